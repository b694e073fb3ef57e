-- 0002_ledger_key_binary: undo exactly what 0002_ledger_key_binary.sql does.

ALTER TABLE points_ledger
    MODIFY idempotency_key VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL;
