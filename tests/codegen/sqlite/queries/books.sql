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
