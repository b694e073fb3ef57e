-- name: AuthorBooks :many
SELECT a.name, b.title, b.id AS book_id
FROM authors a LEFT JOIN books b ON b.author_id = a.id
ORDER BY a.id, b.id;

-- name: BookCounts :many
SELECT a.id, COUNT(b.id) AS books
FROM authors a LEFT JOIN books b ON b.author_id = a.id
GROUP BY a.id ORDER BY a.id;

-- name: BookWithAuthor :one
SELECT sqlc.embed(books), sqlc.embed(authors)
FROM books JOIN authors ON authors.id = books.author_id
WHERE books.id = ?;

-- name: AuthorStats :one
SELECT COUNT(*) AS authors, MAX(rating) AS best, SUM(id) AS id_sum, AVG(rating) AS mean,
       TOTAL(price) AS price_total, MIN(name) || '!' AS first_name, name, 1 + 2 AS three,
       CAST(rating AS TEXT) AS rating_text
FROM authors WHERE active = ?;
