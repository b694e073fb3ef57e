-- 0008_passkeys: WebAuthn credentials (passkeys) and the challenges of their ceremonies
-- (services/users/passkeys.py, ADR 0053). A challenge is a row until its one use (deleted
-- by it) or its expiry: every replica of the users service sees it, none holds it in
-- memory. A name is not blank as migration 0002 says it. Only the SHA-256 of a challenge is stored; a passkey's public key is not secret.

CREATE TYPE webauthn_ceremony AS ENUM ('REGISTER', 'SIGN_IN');

CREATE TABLE webauthn_challenges (
    challenge_hash  bytea             NOT NULL,
    ceremony        webauthn_ceremony NOT NULL,
    user_id         uuid              NULL,
    created_at      timestamptz       NOT NULL DEFAULT now(),
    expires_at      timestamptz       NOT NULL,
    CONSTRAINT webauthn_challenges_pkey PRIMARY KEY (challenge_hash),
    CONSTRAINT webauthn_challenges_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT webauthn_challenges_challenge_hash_chk CHECK (octet_length(challenge_hash) = 32),
    CONSTRAINT webauthn_challenges_user_chk CHECK ((ceremony = 'REGISTER') = (user_id IS NOT NULL)),
    CONSTRAINT webauthn_challenges_expires_at_chk CHECK (expires_at > created_at)
);

CREATE INDEX webauthn_challenges_expires_at_idx ON webauthn_challenges (expires_at);

CREATE TABLE passkeys (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id         uuid        NOT NULL,
    credential_id   bytea       NOT NULL,
    public_key      bytea       NOT NULL,
    sign_count      bigint      NOT NULL DEFAULT 0,
    name            text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz NULL,
    CONSTRAINT passkeys_pkey PRIMARY KEY (id),
    CONSTRAINT passkeys_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT passkeys_credential_id_key UNIQUE (credential_id),
    CONSTRAINT passkeys_credential_id_chk CHECK (octet_length(credential_id) BETWEEN 16 AND 1023),
    CONSTRAINT passkeys_public_key_chk CHECK (octet_length(public_key) > 0),
    CONSTRAINT passkeys_sign_count_chk CHECK (sign_count BETWEEN 0 AND 4294967295),
    CONSTRAINT passkeys_name_chk CHECK (btrim(name, E'\u0009\u000a\u000b\u000c\u000d\u001c\u001d\u001e\u001f\u0020\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000') <> '' AND char_length(name) <= 100)
);

CREATE INDEX passkeys_user_id_idx ON passkeys (user_id);
