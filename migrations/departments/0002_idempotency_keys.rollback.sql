-- 0002_idempotency_keys: undo exactly what 0002_idempotency_keys.sql does
DROP TABLE IF EXISTS idempotency_keys;
