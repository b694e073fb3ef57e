-- 0001_initial: undo exactly what 0001_initial.sql does.

DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS outbox;
DROP TABLE IF EXISTS reviews;
DROP TABLE IF EXISTS jobs;
DROP TABLE IF EXISTS offers;
DROP TABLE IF EXISTS orders;
DROP TABLE IF EXISTS currencies;
DROP TYPE IF EXISTS job_status;
DROP TYPE IF EXISTS offer_status;
DROP TYPE IF EXISTS order_status;
