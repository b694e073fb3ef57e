-- name: AddNote :execlastid
INSERT INTO notes (title, body, pinned, due) VALUES (?, ?, ?, ?);

-- name: GetNote :one
SELECT * FROM notes WHERE id = ?;

-- name: ListNotes :many
SELECT id, title, body FROM notes WHERE id IN (sqlc.slice(ids)) ORDER BY id;

-- name: AddNotes :batchexec
INSERT INTO notes (title) VALUES (?);

-- name: Unpin :execrows
UPDATE notes SET pinned = 0 WHERE pinned = 1;
