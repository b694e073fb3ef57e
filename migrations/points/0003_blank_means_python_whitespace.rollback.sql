-- 0003_blank_means_python_whitespace: the CHECKs as 0001_initial.sql wrote them, in order.

ALTER TABLE points_ledger
    DROP CONSTRAINT points_ledger_reason_chk,
    DROP CONSTRAINT points_ledger_balance_after_chk,
    ADD CONSTRAINT points_ledger_reason_chk CHECK (CHAR_LENGTH(TRIM(reason)) >= 1),
    ADD CONSTRAINT points_ledger_balance_after_chk CHECK (balance_after >= 0);
