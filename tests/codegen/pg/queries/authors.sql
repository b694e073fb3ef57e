-- name: GetAuthor :one
SELECT * FROM authors WHERE id = @id;

-- name: ListAuthorsByIds :many
SELECT * FROM authors WHERE id = ANY(@ids::bigint[]) ORDER BY id;

-- name: ListAuthorsByMood :many
SELECT id, name, mood FROM authors WHERE mood = @mood ORDER BY id;

-- name: CreateAuthor :one
INSERT INTO authors (name, bio, mood, tags, scores, meta, raw, salary, age, ratio, small, active,
                     born, wakes, nap, ip, net, avatar, created_at)
VALUES (@name, sqlc.narg(bio), @mood, @tags, sqlc.narg(scores), sqlc.narg(meta), sqlc.narg(raw),
        sqlc.narg(salary), sqlc.narg(age), sqlc.narg(ratio), sqlc.narg(small), @active,
        sqlc.narg(born), sqlc.narg(wakes), sqlc.narg(nap), sqlc.narg(ip), sqlc.narg(net),
        sqlc.narg(avatar), @created_at)
RETURNING *;

-- name: CreateAuthorId :execlastid
INSERT INTO authors (name) VALUES (@name) RETURNING id;

-- name: RenameAuthor :exec
UPDATE authors SET name = @name WHERE id = @id;

-- name: SetBio :execrows
UPDATE authors SET bio = sqlc.narg(bio) WHERE age >= @min_age;

-- name: DeleteAuthor :execresult
DELETE FROM authors WHERE id = $1;

-- name: CopyAuthors :copyfrom
INSERT INTO authors (name, age, salary, mood) VALUES ($1, $2, $3, $4);

-- name: BumpAges :batchexec
UPDATE authors SET age = age + 1 WHERE id = $1;

-- name: GetAuthorsBatch :batchone
SELECT id, name FROM authors WHERE id = $1;

-- name: BooksOfAuthors :batchmany
SELECT id, title FROM books WHERE author_id = $1 ORDER BY id;

-- name: AuthorStats :one
-- The seed system's statistics query: every aggregate NULL on an empty set.
SELECT count(*) AS total,
       min(age) AS min_age, max(age) AS max_age, avg(age) AS avg_age,
       min(salary) AS min_salary, max(salary) AS max_salary, avg(salary) AS avg_salary,
       coalesce(max(age), 0) AS max_age_or_zero,
       coalesce(avg(salary), 0) AS avg_salary_or_zero
FROM authors
WHERE mood = sqlc.narg(mood) OR sqlc.narg(mood) IS NULL;

-- name: AuthorsWithBooks :many
SELECT a.id, a.name, b.title, b.price FROM authors a LEFT JOIN books b ON b.author_id = a.id
ORDER BY a.id, b.id;

-- name: BooksOfEveryAuthor :many
-- The nullable side of an outer join is every column of a table: a row class with
-- optional fields, never the table's NOT NULL model (LEFT, RIGHT, FULL).
SELECT b.* FROM authors a LEFT JOIN books b ON b.author_id = a.id ORDER BY a.id, b.id;

-- name: BooksRightOfAuthors :many
SELECT b.* FROM books b RIGHT JOIN authors a ON b.author_id = a.id ORDER BY a.id, b.id;

-- name: BooksFullWithAuthors :many
SELECT b.* FROM books b FULL JOIN authors a ON b.author_id = a.id ORDER BY a.id, b.id;

-- name: BooksWithAuthor :many
SELECT sqlc.embed(books), sqlc.embed(authors) FROM books JOIN authors ON authors.id = books.author_id
ORDER BY books.id;

-- name: CountAuthors :one
SELECT count(*) FROM authors;

-- name: PageAuthors :many
-- One query, a statement per key and direction (fixup: sort), age nullable.
-- fixup: sort name, age, created_at desc, keyset id
SELECT id, name, age, created_at FROM authors
WHERE sqlc.narg(mood)::mood IS NULL OR mood = sqlc.narg(mood)::mood
LIMIT @row_limit;
