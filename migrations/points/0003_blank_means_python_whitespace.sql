-- 0003_blank_means_python_whitespace: "blank" means what the service strips, not only spaces.
-- The points service refuses a reason whose Python str.strip() is empty: every Unicode
-- whitespace character, where TRIM() strips spaces only. The class below is exactly
-- Python's whitespace (chr(c).isspace()): U+0009..000D, 001C..0020, 0085, 00A0, 1680,
-- 2000..200A, 2028, 2029, 202F, 205F, 3000 (PCRE \s misses most of them).
-- balance_after_chk is re-added after it so SHOW CREATE TABLE keeps the CHECKs' order.

ALTER TABLE points_ledger
    DROP CONSTRAINT points_ledger_reason_chk,
    DROP CONSTRAINT points_ledger_balance_after_chk,
    ADD CONSTRAINT points_ledger_reason_chk CHECK (reason REGEXP
        '[^\\x{9}-\\x{d}\\x{1c}-\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}]'),
    ADD CONSTRAINT points_ledger_balance_after_chk CHECK (balance_after >= 0);
