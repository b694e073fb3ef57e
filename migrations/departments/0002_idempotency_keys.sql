-- 0002_idempotency_keys: stored first responses of POSTs sent with an Idempotency-Key
-- (same table as in users, orders and chat; lib/http/idempotency.py).

CREATE TABLE idempotency_keys (
    caller            text        NOT NULL,
    key               text        NOT NULL,
    request_hash      bytea       NOT NULL,
    status_code       smallint    NOT NULL,
    response_headers  jsonb       NOT NULL DEFAULT '{}'::jsonb,
    response_body     bytea       NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (caller, key),
    CONSTRAINT idempotency_keys_caller_chk CHECK (char_length(caller) BETWEEN 1 AND 255),
    CONSTRAINT idempotency_keys_key_chk CHECK (char_length(key) BETWEEN 1 AND 255),
    CONSTRAINT idempotency_keys_status_code_chk CHECK (status_code BETWEEN 100 AND 599)
);

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
