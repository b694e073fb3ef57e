-- The second factor (services/users/totp.py, ADR 0054): TOTP enrolments, recovery codes,
-- and the challenges of a password sign-in that still owes it.

-- name: TotpOf :one
SELECT secret_encrypted, confirmed_at, last_step FROM totp_factors WHERE user_id = @user_id;

-- name: StartTotp :execrows
-- A new enrolment replaces one never confirmed; a confirmed one stays (0 rows: 409).
INSERT INTO totp_factors (user_id, secret_encrypted)
VALUES (@user_id, @secret_encrypted)
ON CONFLICT (user_id) DO UPDATE
SET secret_encrypted = EXCLUDED.secret_encrypted, created_at = now(), last_step = NULL
WHERE totp_factors.confirmed_at IS NULL;

-- name: LockTotp :one
-- Two codes of one user serialise here: the second sees the first's last_step.
SELECT secret_encrypted, confirmed_at, last_step FROM totp_factors
WHERE user_id = @user_id FOR UPDATE;

-- name: UseTotpStep :exec
-- The time step a code was accepted for: a code of it or an earlier one is refused after.
UPDATE totp_factors
SET last_step = @step, confirmed_at = coalesce(confirmed_at, now())
WHERE user_id = @user_id;

-- name: DeleteTotp :execrows
DELETE FROM totp_factors WHERE user_id = @user_id;

-- name: DeleteRecoveryCodes :exec
DELETE FROM recovery_codes WHERE user_id = @user_id;

-- name: AddRecoveryCodes :exec
INSERT INTO recovery_codes (user_id, code_hash)
SELECT @user_id, unnest(@code_hashes::bytea[]);

-- name: UseRecoveryCode :execrows
UPDATE recovery_codes SET used_at = now()
WHERE user_id = @user_id AND code_hash = @code_hash AND used_at IS NULL;

-- name: RecoveryCodesLeft :one
SELECT count(*) FILTER (WHERE used_at IS NULL) AS left_count
FROM recovery_codes WHERE user_id = @user_id;

-- name: AddSecondFactorChallenge :exec
INSERT INTO second_factor_challenges (token_hash, user_id, step, password_hash, expires_at)
VALUES (@token_hash, @user_id, @step, @password_hash,
        now() + make_interval(secs => @ttl_seconds::double precision));

-- name: LockSecondFactorChallenge :one
-- The challenge with its account (only one that may still sign in), locked: its wrong
-- codes count one at a time.
SELECT c.user_id, c.step, c.password_hash, c.attempts, c.expires_at > now() AS live,
       u.email, u.role, u.verified
FROM second_factor_challenges c
JOIN users u ON u.id = c.user_id AND u.disabled_at IS NULL
WHERE c.token_hash = @token_hash
FOR UPDATE OF c;

-- name: CountWrongCode :exec
UPDATE second_factor_challenges SET attempts = attempts + 1 WHERE token_hash = @token_hash;

-- name: DropSecondFactorChallenge :exec
DELETE FROM second_factor_challenges WHERE token_hash = @token_hash;

-- name: DropExpiredSecondFactorChallenges :exec
DELETE FROM second_factor_challenges WHERE expires_at < now() - interval '1 minute';
