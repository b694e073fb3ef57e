-- The /v1/auth flows (services/users/registration.py, sessions.py, passwords.py):
-- registration, email tokens, refresh token families. Secrets are stored as SHA-256
-- digests (token_hash), never as sent.

-- name: RegisterUser :one
INSERT INTO users (email, password_hash, first_name, last_name, phone_number, role)
VALUES (lower(@email::text), @password_hash, @first_name, @last_name, @phone_number, @role)
RETURNING id, email, first_name, last_name, phone_number, role, verified, department_id, age,
          salary, version, created_at;

-- name: AddProviderDetails :exec
INSERT INTO provider_details (user_id, personal_id_encrypted, personal_id_last4)
VALUES (@user_id, @personal_id_encrypted, @personal_id_last4);

-- name: LoginCandidate :one
-- The account a login or a mail request names: only one that may still log in.
SELECT id, email, password_hash, role, verified
FROM users
WHERE email = lower(@email::text) AND disabled_at IS NULL;

-- name: AddEmailToken :exec
INSERT INTO email_tokens (user_id, purpose, token_hash, expires_at)
VALUES (@user_id, @purpose, @token_hash, now() + make_interval(secs => @ttl_seconds::double precision));

-- name: LockEmailToken :one
-- Locked so that two uses of one token serialise: the second sees used_at.
SELECT id, user_id, used_at, expires_at <= now() AS expired
FROM email_tokens
WHERE token_hash = @token_hash AND purpose = @purpose
FOR UPDATE;

-- name: UseEmailTokens :exec
-- Every unused token of this purpose dies with the one used (older links stop working).
UPDATE email_tokens SET used_at = now()
WHERE user_id = @user_id AND purpose = @purpose AND used_at IS NULL;

-- name: MarkVerified :exec
UPDATE users SET verified = true, version = version + 1, updated_at = now()
WHERE id = @id AND NOT verified;

-- name: SetPasswordHash :execrows
UPDATE users SET password_hash = @password_hash, version = version + 1, updated_at = now()
WHERE id = @id AND disabled_at IS NULL;

-- name: StartSession :execrows
-- A new refresh family and its first token: one statement, so one round trip and atomic
-- without BEGIN/COMMIT (login's work on the event loop, ADR 0010). Only while the account
-- still has the password the login checked: the row is share-locked, so a concurrent
-- reset, change or deletion either waits for this session (and then ends it) or has
-- committed first (then this inserts nothing: 0 rows, the login is refused).
WITH account AS (
    SELECT u.id FROM users u
    WHERE u.id = @user_id AND u.password_hash = @password_hash AND u.disabled_at IS NULL
    FOR SHARE
), family AS (
    INSERT INTO refresh_token_families
        (id, user_id, authenticated_at, last_used_at, user_agent, address)
    SELECT @family_id::uuid, account.id, now(), now(),
           sqlc.narg(user_agent)::text, sqlc.narg(address)::text
    FROM account
    RETURNING refresh_token_families.id
)
INSERT INTO refresh_tokens (family_id, token_hash, expires_at)
SELECT family.id, @token_hash, now() + make_interval(secs => @ttl_seconds::double precision)
FROM family;

-- name: AddRefreshToken :execrows
-- The next token of a family, until the family's absolute lifetime (SESSION_MAX_LIFETIME,
-- from its login): its expiry is the sooner of the two, and a family past it gets none
-- (0 rows: the refresh is refused).
INSERT INTO refresh_tokens (family_id, token_hash, expires_at)
SELECT f.id, @token_hash,
       least(now() + make_interval(secs => @ttl_seconds::double precision),
             f.created_at + make_interval(secs => @max_lifetime_seconds::double precision))
FROM refresh_token_families f
WHERE f.id = @family_id
  AND f.created_at + make_interval(secs => @max_lifetime_seconds::double precision) > now();

-- name: LockRefreshToken :one
-- FOR UPDATE OF t: concurrent refreshes of one token queue here; after the first commits,
-- the others read its used_at (READ COMMITTED re-reads a row it waited for). FOR SHARE OF
-- f: a refresh and the end of every session (RevokeUserFamilies) serialise, so a rotation
-- either sees the family revoked or is itself revoked by it.
SELECT t.id, t.family_id, t.used_at, t.expires_at <= now() AS expired,
       f.revoked_at, f.user_id, u.role, u.verified, u.disabled_at
FROM refresh_tokens t
JOIN refresh_token_families f ON f.id = t.family_id
JOIN users u ON u.id = f.user_id
WHERE t.token_hash = @token_hash
FOR UPDATE OF t FOR SHARE OF f;

-- name: MarkRefreshTokenUsed :exec
UPDATE refresh_tokens SET used_at = now() WHERE id = @id;

-- name: TouchFamily :exec
-- A refresh: the session's "last used" (its list, ADR 0055).
UPDATE refresh_token_families SET last_used_at = now() WHERE id = @id;

-- name: RevokeFamily :execrows
UPDATE refresh_token_families SET revoked_at = now(), revoked_reason = @reason
WHERE id = @id AND revoked_at IS NULL;

-- name: RevokeUserFamilies :execrows
-- Password change or reset, account deletion: every session of the user ends.
UPDATE refresh_token_families SET revoked_at = now(), revoked_reason = @reason
WHERE user_id = @user_id AND revoked_at IS NULL;

-- name: ListSessions :many
-- The live sessions of a user (not ended, a refresh token still usable), the most recently
-- used first; bounded: a person has a few devices, not hundreds (ADR 0055).
SELECT f.id, f.created_at, coalesce(f.last_used_at, f.created_at)::timestamptz AS last_used_at,
       f.user_agent, f.address
FROM refresh_token_families f
WHERE f.user_id = @user_id AND f.revoked_at IS NULL
  AND EXISTS (
      SELECT 1 FROM refresh_tokens t
      WHERE t.family_id = f.id AND t.used_at IS NULL AND t.expires_at > now()
  )
ORDER BY coalesce(f.last_used_at, f.created_at) DESC, f.id
LIMIT @row_limit;

-- name: EndSession :execrows
-- One session of the user ends (its refresh tokens stop working).
UPDATE refresh_token_families SET revoked_at = now(), revoked_reason = @reason
WHERE id = @id AND user_id = @user_id AND revoked_at IS NULL;

-- name: EndOtherSessions :execrows
-- Every session of the user but @keep_id ends.
UPDATE refresh_token_families SET revoked_at = now(), revoked_reason = @reason
WHERE user_id = @user_id AND id <> @keep_id AND revoked_at IS NULL;

-- name: SessionRecentlyAuthenticated :one
-- Whether a live session of the user proved who it is (login or re-authentication) within
-- @max_age_seconds, on the database's clock; no row: the session has ended.
SELECT coalesce(authenticated_at, created_at)
       > now() - make_interval(secs => @max_age_seconds::double precision) AS recent
FROM refresh_token_families
WHERE id = @id AND user_id = @user_id AND revoked_at IS NULL;

-- name: MarkReauthenticated :execrows
-- The session proved who it is again (password, passkey or second factor): now.
UPDATE refresh_token_families SET authenticated_at = now()
WHERE id = @id AND user_id = @user_id AND revoked_at IS NULL;

-- name: DatabaseClock :one
-- The one clock of what is compared across processes (ADR 0010): a token's iat.
SELECT clock_timestamp()::timestamptz AS now;

-- name: RecordRevocation :one
-- The tokens of the user issued until now are void; never moves a record back.
INSERT INTO token_revocations (user_id, not_before)
VALUES (@user_id, clock_timestamp())
ON CONFLICT (user_id) DO UPDATE
SET not_before = greatest(token_revocations.not_before, EXCLUDED.not_before)
RETURNING not_before;

-- name: RevocationsOf :many
-- The records of these users (those without one are not listed).
SELECT user_id, not_before
FROM token_revocations
WHERE user_id = ANY(@user_ids::uuid[]);

-- name: ShareRevocationLock :exec
-- Held by a transaction that ends sessions from its record to its COMMIT (its Redis copy
-- is written in between): a restore's exclusive hold waits for every such one (ADR 0010).
SELECT pg_advisory_xact_lock_shared(hashtextextended('fixup.token_revocations', 0));

-- name: HoldRevocationLock :exec
-- A restore reads the record only once no revocation is between its row and its COMMIT.
SELECT pg_advisory_xact_lock(hashtextextended('fixup.token_revocations', 0));

-- name: RecentRevocations :many
-- Every record younger than @seconds (the longest token life and a margin): what Redis must hold.
SELECT user_id, not_before
FROM token_revocations
WHERE not_before > clock_timestamp() - make_interval(secs => @seconds::int)
ORDER BY not_before;

-- name: LatestRevocation :one
-- The newest record: Redis lacking it has lost writes (a failover to a lagging replica).
SELECT user_id, not_before, clock_timestamp()::timestamptz AS now
FROM token_revocations
ORDER BY not_before DESC
LIMIT 1;
