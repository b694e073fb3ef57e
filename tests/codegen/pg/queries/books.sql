-- name: CreateBook :one
INSERT INTO books (author_id, title, price) VALUES (@author_id, @title, @price) RETURNING *;

-- name: BookPercentTitles :many
SELECT title FROM books WHERE title LIKE '%' || @part || '%' ORDER BY id;
