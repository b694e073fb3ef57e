-- The Idempotency-Key store (lib/http/idempotency.py), shared by every PostgreSQL db that
-- has an idempotency_keys table: each sql/<db>/sqlc.yaml lists this file in `queries`.

-- name: LockIdempotencyKey :exec
-- Serialises concurrent requests with one key until the surrounding transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended(@caller::text || ':' || @key::text, 0));

-- name: GetIdempotencyKey :one
SELECT request_hash, status_code, response_headers, response_body
FROM idempotency_keys
WHERE caller = @caller AND key = @key AND created_at > now() - interval '24 hours';

-- name: SaveIdempotencyKey :exec
INSERT INTO idempotency_keys (caller, key, request_hash, status_code, response_headers, response_body)
VALUES (@caller, @key, @request_hash, @status_code, @response_headers, @response_body)
ON CONFLICT (caller, key) DO UPDATE
SET request_hash = EXCLUDED.request_hash, status_code = EXCLUDED.status_code,
    response_headers = EXCLUDED.response_headers, response_body = EXCLUDED.response_body,
    created_at = now();
