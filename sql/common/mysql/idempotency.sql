-- The Idempotency-Key store (lib/http/idempotency.py) of a MariaDB db that has an
-- idempotency_keys table: each such sql/<db>/sqlc.yaml lists this file in `queries`.
-- MariaDB has no transaction-scoped advisory lock (GET_LOCK outlives the transaction), so
-- the lock is the key's own row: claimed (status_code 0) by an upsert that waits for the
-- transaction holding it, answered by SaveIdempotencyKey in the same transaction.

-- name: LockIdempotencyKey :exec
-- Serialises concurrent requests with one key until the surrounding transaction ends
-- (an upsert, not a locking read: a locking read of a missing row takes gap locks that
-- deadlock the concurrent inserts).
INSERT INTO idempotency_keys (caller, idempotency_key) VALUES (sqlc.arg(caller), sqlc.arg('key'))
ON DUPLICATE KEY UPDATE caller = caller;

-- name: GetIdempotencyKey :one
-- A consistent read after the lock: its snapshot starts now, so it sees the answer the
-- transaction that held the lock committed.
SELECT request_hash, status_code, response_headers, response_body
FROM idempotency_keys
WHERE caller = sqlc.arg(caller) AND idempotency_key = sqlc.arg('key')
  AND status_code > 0 AND created_at > NOW(6) - INTERVAL 24 HOUR;

-- name: SaveIdempotencyKey :exec
UPDATE idempotency_keys
SET request_hash = sqlc.arg(request_hash), status_code = sqlc.arg(status_code),
    response_headers = sqlc.arg(response_headers), response_body = sqlc.arg(response_body),
    created_at = NOW(6)
WHERE caller = sqlc.arg(caller) AND idempotency_key = sqlc.arg('key');
