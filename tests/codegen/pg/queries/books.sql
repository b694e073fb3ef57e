-- name: CreateBook :one
INSERT INTO books (author_id, title, price) VALUES (@author_id, @title, @price) RETURNING *;

-- name: BookPercentTitles :many
SELECT title FROM books WHERE title LIKE '%' || @part || '%' ORDER BY id;

-- name: PageBooks :many
-- A page with its total in one statement: an uncorrelated scalar subquery runs once (an
-- InitPlan), and the generated code reads it from the first row only.
-- fixup: once total
SELECT (SELECT count(*) FROM books) AS total, books.*
FROM books ORDER BY id LIMIT @row_limit OFFSET @row_offset;

-- name: PageAuthorMoods :many
-- fixup: once total, newest
SELECT (SELECT count(*) FROM authors) AS total, (SELECT max(created_at) FROM authors) AS newest,
       name, mood
FROM authors ORDER BY id LIMIT @row_limit;

-- name: UpdateBookFields :execrows
-- CASE on optional parameters: sqlc types them from the columns they are assigned to, the
-- server cannot (`$n IS NULL` comes first); make sqlc-types prepares the query again with
-- sqlc's types (the lock's `casts`) and the generated SQL carries `$n::text`, `$n::numeric`.
UPDATE books
SET title = CASE WHEN sqlc.narg('title') IS NULL THEN title ELSE sqlc.narg('title') END,
    price = CASE WHEN sqlc.narg('price') IS NULL THEN price ELSE sqlc.narg('price') END
WHERE id = sqlc.arg('id');

-- name: UpsertBookTitle :one
-- The same in ON CONFLICT: a NULL new_title keeps the stored title.
INSERT INTO books (id, author_id, title, price) VALUES (@id, @author_id, @title, @price)
ON CONFLICT (id) DO UPDATE
SET title = CASE WHEN sqlc.narg('new_title') IS NULL THEN books.title ELSE sqlc.narg('new_title') END
RETURNING id, title;

-- name: ListBooksOfAuthor :many
-- Offset paging, sorted (fixup: sort), with an alias the keys name.
-- fixup: sort b.title, b.price desc, then b.id
SELECT b.* FROM books b JOIN authors a ON a.id = b.author_id
WHERE a.id = @author_id
LIMIT @row_limit OFFSET @row_offset;
