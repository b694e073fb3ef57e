-- name: GetAuthor :one
SELECT * FROM authors WHERE id = ?;

-- name: ListAuthors :many
SELECT id, name, bio FROM authors WHERE name LIKE sqlc.arg(pattern) ORDER BY id;

-- name: CountAuthors :one
SELECT COUNT(*) FROM authors;

-- name: CreateAuthor :one
INSERT INTO authors (name, bio, born, seen_at, rating, photo, active, price, profile)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING *;

-- name: AddAuthor :execlastid
INSERT INTO authors (name) VALUES (?);

-- name: AddAuthors :batchexec
INSERT INTO authors (name, rating) VALUES (?, ?);

-- name: RenameAuthor :exec
UPDATE authors SET name = :name WHERE id = :id;

-- name: Deactivate :execrows
UPDATE authors SET active = 0 WHERE rating < ?1 OR rating > ?1 * 10;

-- name: AuthorsByIds :many
SELECT id, name FROM authors WHERE id IN (sqlc.slice(ids)) AND active = @active ORDER BY id;

-- name: AuthorsByIdsBatch :batchmany
SELECT id, name FROM authors WHERE rating >= ? ORDER BY id;

-- name: AuthorByName :batchone
SELECT id FROM authors WHERE name = ?;

-- name: AddBook :execresult
INSERT INTO books (author_id, title) VALUES (?, ?);

-- name: PageAuthors :many
-- One query, a statement per key and direction (fixup: sort): rating REAL, bio nullable, a
-- slice and a named parameter before the keyset's.
-- fixup: sort name, rating, bio, keyset id
SELECT id, name, rating, bio FROM authors
WHERE active = @active AND id NOT IN (sqlc.slice(skip))
LIMIT @row_limit;
