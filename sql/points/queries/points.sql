-- name: GetUserPoints :one
SELECT points FROM user_points WHERE user_id = ?;

-- name: GetUserListPoints :many
SELECT user_id, points FROM user_points WHERE user_id IN (sqlc.slice(user_ids));

-- name: EnsureUserPoints :exec
-- A zero balance row when there is none. Concurrent first inserts of the same user
-- serialise on the primary key instead of deadlocking on gap locks (which a locking read
-- of a missing row followed by an INSERT would do).
INSERT INTO user_points (user_id, points) VALUES (?, 0)
ON DUPLICATE KEY UPDATE user_id = user_id;

-- name: LockUserPoints :one
-- The balance row, locked for the rest of the transaction (serialises concurrent adds).
SELECT points FROM user_points WHERE user_id = ? FOR UPDATE;

-- name: UpsertUserPoints :exec
INSERT INTO user_points (user_id, points) VALUES (sqlc.arg(user_id), sqlc.arg(points))
ON DUPLICATE KEY UPDATE points = VALUES(points);

-- name: GetLedgerEntry :one
SELECT * FROM points_ledger WHERE idempotency_key = ?;

-- name: InsertLedgerEntry :execlastid
INSERT INTO points_ledger (idempotency_key, user_id, delta, reason, balance_after)
VALUES (?, ?, ?, ?, ?);

-- name: SetUserPoints :batchexec
INSERT INTO user_points (user_id, points) VALUES (sqlc.arg(user_id), sqlc.arg(points))
ON DUPLICATE KEY UPDATE points = VALUES(points);

-- name: ExportUserPoints :one
-- The balance row of a person's data export (GetUserExport, ADR 0059).
SELECT * FROM user_points WHERE user_id = ?;

-- name: ExportLedger :many
-- The ledger of a person's data export, oldest first, at most `row_limit` rows (the
-- caller asks for one more than its bound).
SELECT * FROM points_ledger WHERE user_id = ?
ORDER BY id LIMIT ?;
