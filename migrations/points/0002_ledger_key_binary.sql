-- 0002_ledger_key_binary: idempotency keys compare byte for byte.
-- Under utf8mb4_unicode_ci "Job:1" and "job:1" were the same key (a replay of one request
-- could answer for another). Keys are visible ASCII (the service rejects anything else),
-- so ascii_bin makes the unique key exact.

ALTER TABLE points_ledger
    MODIFY idempotency_key VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL;
