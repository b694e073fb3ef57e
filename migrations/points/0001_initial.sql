-- 0001_initial: the balance per user and the append-only ledger of changes.
-- user_id is a lowercase canonical UUID string (ascii_bin: compared byte for byte).
-- DATETIME columns hold UTC: connections set time_zone = '+00:00'.

CREATE TABLE user_points (
    user_id     CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    points      INT NOT NULL DEFAULT 0,
    updated_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    CONSTRAINT user_points_pkey PRIMARY KEY (user_id),
    CONSTRAINT user_points_user_id_chk
        CHECK (user_id REGEXP '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    CONSTRAINT user_points_points_chk CHECK (points >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE points_ledger (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    idempotency_key  VARCHAR(128) NOT NULL,
    user_id          CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    delta            INT NOT NULL,
    reason           VARCHAR(200) NOT NULL,
    balance_after    INT NOT NULL,
    created_at       DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    CONSTRAINT points_ledger_pkey PRIMARY KEY (id),
    CONSTRAINT points_ledger_idempotency_key_key UNIQUE KEY (idempotency_key),
    CONSTRAINT points_ledger_idempotency_key_chk CHECK (CHAR_LENGTH(idempotency_key) >= 1),
    CONSTRAINT points_ledger_user_id_chk
        CHECK (user_id REGEXP '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    CONSTRAINT points_ledger_delta_chk CHECK (delta <> 0),
    CONSTRAINT points_ledger_reason_chk CHECK (CHAR_LENGTH(TRIM(reason)) >= 1),
    CONSTRAINT points_ledger_balance_after_chk CHECK (balance_after >= 0),
    KEY points_ledger_user_id_idx (user_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
