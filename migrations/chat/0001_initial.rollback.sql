-- 0001_initial: undo exactly what 0001_initial.sql does.

DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS messages;
DROP TABLE IF EXISTS conversations;
