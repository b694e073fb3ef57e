-- 0001_initial: users, provider details, refresh token families, single-use email tokens,
-- idempotency keys. department_id names a row of the departments database: no FK.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TYPE user_role AS ENUM ('CUSTOMER', 'PROVIDER', 'MODERATOR', 'ADMIN');

CREATE TYPE email_token_purpose AS ENUM ('VERIFY_EMAIL', 'PASSWORD_RESET');

CREATE TABLE users (
    id             uuid          NOT NULL DEFAULT gen_random_uuid(),
    email          text          NOT NULL,
    password_hash  text          NOT NULL,
    first_name     text          NOT NULL,
    last_name      text          NOT NULL,
    phone_number   text          NOT NULL,
    role           user_role     NOT NULL DEFAULT 'CUSTOMER',
    verified       boolean       NOT NULL DEFAULT false,
    department_id  uuid          NULL,
    age            integer       NULL,
    salary         numeric(12,2) NULL,
    picture_key    text          NULL,
    disabled_at    timestamptz   NULL,
    deleted_at     timestamptz   NULL,
    version        integer       NOT NULL DEFAULT 1,
    created_at     timestamptz   NOT NULL DEFAULT now(),
    updated_at     timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_lower_chk CHECK (email = lower(email)),
    CONSTRAINT users_email_chk CHECK (char_length(email) BETWEEN 3 AND 254 AND position('@' IN email) > 1),
    CONSTRAINT users_password_hash_chk CHECK (password_hash <> ''),
    CONSTRAINT users_first_name_chk CHECK (btrim(first_name) <> '' AND char_length(first_name) <= 100),
    CONSTRAINT users_last_name_chk CHECK (btrim(last_name) <> '' AND char_length(last_name) <= 100),
    CONSTRAINT users_phone_number_chk CHECK (char_length(btrim(phone_number)) BETWEEN 3 AND 32),
    CONSTRAINT users_age_chk CHECK (age BETWEEN 0 AND 150),
    CONSTRAINT users_salary_chk CHECK (salary >= 0),
    CONSTRAINT users_picture_key_chk CHECK (char_length(picture_key) BETWEEN 1 AND 255),
    CONSTRAINT users_deleted_at_chk CHECK (deleted_at IS NULL OR disabled_at IS NOT NULL),
    CONSTRAINT users_version_chk CHECK (version >= 1)
);

-- List orderings (email is covered by users_email_key), id as the tiebreaker.
CREATE INDEX users_last_name_id_idx ON users (last_name, id);
CREATE INDEX users_first_name_id_idx ON users (first_name, id);
CREATE INDEX users_age_id_idx ON users (age, id);
CREATE INDEX users_salary_id_idx ON users (salary, id);
CREATE INDEX users_created_at_id_idx ON users (created_at, id);
-- Filters.
CREATE INDEX users_department_id_idx ON users (department_id);
CREATE INDEX users_role_last_name_id_idx ON users (role, last_name, id);
-- search: `(first_name || ' ' || last_name || ' ' || email) ILIKE '%' || $1 || '%'`
-- (text || text is immutable, so the expression can be indexed as written).
CREATE INDEX users_search_trgm_idx ON users
    USING gin ((first_name || ' ' || last_name || ' ' || email) gin_trgm_ops);

CREATE TABLE provider_details (
    user_id                uuid        NOT NULL,
    personal_id_encrypted  bytea       NOT NULL,
    personal_id_last4      text        NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT provider_details_pkey PRIMARY KEY (user_id),
    CONSTRAINT provider_details_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT provider_details_personal_id_encrypted_chk
        CHECK (octet_length(personal_id_encrypted) > 0),
    CONSTRAINT provider_details_personal_id_last4_chk CHECK (char_length(personal_id_last4) = 4)
);

CREATE TABLE refresh_token_families (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id         uuid        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz NULL,
    revoked_reason  text        NULL,
    CONSTRAINT refresh_token_families_pkey PRIMARY KEY (id),
    CONSTRAINT refresh_token_families_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT refresh_token_families_revoked_reason_chk
        CHECK (revoked_reason IS NULL OR (revoked_at IS NOT NULL AND char_length(revoked_reason) BETWEEN 1 AND 100))
);

CREATE INDEX refresh_token_families_user_id_idx ON refresh_token_families (user_id);

CREATE TABLE refresh_tokens (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    family_id   uuid        NOT NULL,
    token_hash  bytea       NOT NULL,
    used_at     timestamptz NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refresh_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT refresh_tokens_family_id_fkey FOREIGN KEY (family_id)
        REFERENCES refresh_token_families (id) ON DELETE CASCADE,
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT refresh_tokens_token_hash_chk CHECK (octet_length(token_hash) >= 16),
    CONSTRAINT refresh_tokens_expires_at_chk CHECK (expires_at > created_at)
);

CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);

CREATE TABLE email_tokens (
    id          uuid                NOT NULL DEFAULT gen_random_uuid(),
    user_id     uuid                NOT NULL,
    purpose     email_token_purpose NOT NULL,
    token_hash  bytea               NOT NULL,
    expires_at  timestamptz         NOT NULL,
    used_at     timestamptz         NULL,
    created_at  timestamptz         NOT NULL DEFAULT now(),
    CONSTRAINT email_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT email_tokens_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT email_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT email_tokens_token_hash_chk CHECK (octet_length(token_hash) >= 16),
    CONSTRAINT email_tokens_expires_at_chk CHECK (expires_at > created_at)
);

CREATE INDEX email_tokens_user_id_purpose_idx ON email_tokens (user_id, purpose);

-- Idempotency-Key replay store: the first response per (caller, key), kept 24 h.
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
