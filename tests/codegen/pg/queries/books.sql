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
