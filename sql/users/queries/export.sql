-- A person's own rows for their data export (services/users/export.py, ADR 0059) that no
-- other query reads whole: metadata only, never a secret or a secret's hash.

-- name: ExportProviderDetails :one
-- The personal id number stays sealed: its last four digits, as registration showed them.
SELECT personal_id_last4, created_at FROM provider_details WHERE user_id = @user_id;

-- name: ExportSessions :many
-- Every session (refresh family), ended ones too; never a refresh token or its hash.
SELECT id, created_at, authenticated_at, last_used_at, revoked_at, revoked_reason,
       user_agent, address
FROM refresh_token_families
WHERE user_id = @user_id
ORDER BY created_at, id
LIMIT @row_limit;

-- name: ExportEmailTokens :many
-- The verification and reset links sent: when and for what, never the token's hash.
SELECT id, purpose, created_at, expires_at, used_at
FROM email_tokens
WHERE user_id = @user_id
ORDER BY created_at, id
LIMIT @row_limit;
