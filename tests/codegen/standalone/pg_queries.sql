-- name: AddShelf :exec
INSERT INTO shelf (id, title, subtitle, tags, room_id) VALUES ($1, $2, $3, $4, $5);

-- name: List :many
SELECT id, title, subtitle, tags FROM shelf ORDER BY id;

-- name: ShelvesInRooms :many
SELECT id, room_id FROM shelf WHERE room_id IS NOT NULL ORDER BY id;

-- name: Rename :execresult
UPDATE shelf SET title = $2 WHERE id = $1;

-- name: Lock :one
SELECT pg_advisory_xact_lock($1);

-- name: Stats :one
SELECT avg(price) AS mean_price, string_agg(title, ',' ORDER BY id) AS titles FROM shelf;
