-- Passkeys (services/users/passkeys.py, ADR 0053): the challenges of the WebAuthn
-- ceremonies, single use and short-lived, and the credentials of each account.

-- name: AddChallenge :exec
INSERT INTO webauthn_challenges (challenge_hash, ceremony, user_id, expires_at)
VALUES (@challenge_hash, @ceremony, sqlc.narg(user_id),
        now() + make_interval(secs => @ttl_seconds::double precision));

-- name: TakeChallenge :one
-- The challenge's one use: deleted whatever the answer, so a second presentation of the
-- same response finds nothing. `live` false: it had expired.
DELETE FROM webauthn_challenges
WHERE challenge_hash = @challenge_hash AND ceremony = @ceremony
RETURNING user_id, expires_at > now() AS live;

-- name: DropExpiredChallenges :execrows
-- Challenges nobody answered: removed as new ones are made (bounded by the index).
DELETE FROM webauthn_challenges WHERE expires_at < now() - interval '1 minute';

-- name: AddPasskey :one
-- ON CONFLICT: a credential already registered (to this or another account) adds nothing.
INSERT INTO passkeys (user_id, credential_id, public_key, sign_count, name)
SELECT u.id, @credential_id, @public_key, @sign_count, @name
FROM users u WHERE u.id = @user_id AND u.disabled_at IS NULL
ON CONFLICT (credential_id) DO NOTHING
RETURNING id, name, created_at, last_used_at;

-- name: PasskeysOf :many
SELECT id, name, created_at, last_used_at
FROM passkeys
WHERE user_id = @user_id
ORDER BY created_at, id;

-- name: CredentialIdsOf :many
-- What a new registration excludes (the authenticator refuses to make a second one).
SELECT credential_id FROM passkeys WHERE user_id = @user_id;

-- name: DeletePasskey :execrows
DELETE FROM passkeys WHERE id = @id AND user_id = @user_id;

-- name: PasskeyForSignIn :one
-- The credential an assertion names, with the account it signs in (only one that may).
SELECT p.id, p.user_id, p.public_key, p.sign_count, u.email, u.password_hash, u.role, u.verified
FROM passkeys p
JOIN users u ON u.id = p.user_id
WHERE p.credential_id = @credential_id AND u.disabled_at IS NULL;

-- name: UsePasskey :execrows
-- The counter moves only forward (two assertions racing: one wins, ADR 0053); 0 is an
-- authenticator that keeps no counter, which stays 0.
UPDATE passkeys SET sign_count = @sign_count, last_used_at = now()
WHERE id = @id AND (sign_count < @sign_count OR (sign_count = 0 AND @sign_count = 0));

-- name: ErasePasskeys :exec
-- The erasure of a person (ADR 0060): every passkey of theirs.
DELETE FROM passkeys WHERE user_id = @user_id;
