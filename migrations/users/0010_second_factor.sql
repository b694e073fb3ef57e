-- 0010_second_factor: TOTP (RFC 6238) as a second factor, its recovery codes, and the
-- challenges a password sign-in answers with while the second factor is owed
-- (services/users/totp.py, ADR 0054). The TOTP secret is sealed with the encryption
-- keyring (lib/crypto.py, bound to the user id); a recovery code and a challenge are
-- stored as their SHA-256 (random, 100 and 256 bits: ADR 0054).

CREATE TABLE totp_factors (
    user_id           uuid        NOT NULL,
    secret_encrypted  bytea       NOT NULL,
    confirmed_at      timestamptz NULL,
    last_step         bigint      NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT totp_factors_pkey PRIMARY KEY (user_id),
    CONSTRAINT totp_factors_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT totp_factors_secret_encrypted_chk CHECK (octet_length(secret_encrypted) > 28),
    CONSTRAINT totp_factors_last_step_chk CHECK (last_step IS NULL OR last_step >= 0)
);

CREATE TABLE recovery_codes (
    user_id    uuid        NOT NULL,
    code_hash  bytea       NOT NULL,
    used_at    timestamptz NULL,
    CONSTRAINT recovery_codes_pkey PRIMARY KEY (user_id, code_hash),
    CONSTRAINT recovery_codes_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT recovery_codes_code_hash_chk CHECK (octet_length(code_hash) = 32)
);

CREATE TYPE second_factor_step AS ENUM ('VERIFY', 'ENROL');

CREATE TABLE second_factor_challenges (
    token_hash     bytea              NOT NULL,
    user_id        uuid               NOT NULL,
    step           second_factor_step NOT NULL,
    password_hash  text               NOT NULL,
    attempts       integer            NOT NULL DEFAULT 0,
    created_at     timestamptz        NOT NULL DEFAULT now(),
    expires_at     timestamptz        NOT NULL,
    CONSTRAINT second_factor_challenges_pkey PRIMARY KEY (token_hash),
    CONSTRAINT second_factor_challenges_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT second_factor_challenges_token_hash_chk CHECK (octet_length(token_hash) = 32),
    CONSTRAINT second_factor_challenges_attempts_chk CHECK (attempts BETWEEN 0 AND 5),
    CONSTRAINT second_factor_challenges_expires_at_chk CHECK (expires_at > created_at)
);

CREATE INDEX second_factor_challenges_user_id_idx ON second_factor_challenges (user_id);
CREATE INDEX second_factor_challenges_expires_at_idx ON second_factor_challenges (expires_at);
