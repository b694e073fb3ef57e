-- name: CreatePost :execlastid
INSERT INTO posts (title, body, price, doc, flag) VALUES (?, ?, ?, ?, ?);

-- name: CreateComment :exec
INSERT INTO comments (post_id, note) VALUES (?, ?);

-- name: TextExpressions :one
-- The server's charset decides str or bytes.
SELECT CONCAT(title, ': ', body) AS line, UPPER(body) AS shout, JSON_EXTRACT(doc, '$.a') AS a,
       CAST(title AS BINARY) AS raw
FROM posts WHERE id = ?;

-- name: AllTitles :one
SELECT GROUP_CONCAT(title ORDER BY id) AS titles FROM posts;

-- name: PricesPage :many
-- LIMIT ? / OFFSET ?: the types step must keep the query valid to learn DECIMAL.
SELECT id, price * 2 AS doubled FROM posts ORDER BY id LIMIT ? OFFSET ?;

-- name: CheaperThan :many
-- sqlc types both parameters `any`: judged from price (DECIMAL) and title (VARCHAR).
SELECT id FROM posts WHERE price < ? + 1 AND title LIKE CONCAT('%', ?, '%') ORDER BY id;

-- name: PostsWithComments :many
SELECT p.id, c.note FROM posts p LEFT JOIN comments c ON c.post_id = p.id ORDER BY p.id, c.id;

-- name: Defaults :many
SELECT id, IFNULL(body, '') AS body_or_empty, COALESCE(price, 0) AS price_or_zero, body,
       UPPER(body) AS shout
FROM posts ORDER BY id;

-- name: Totals :one
SELECT COUNT(*) AS n, MAX(price) AS top, SUM(price) AS total, AVG(price) AS mean FROM posts;

-- name: Ratios :many
-- MariaDB answers x / 0, x DIV 0, x % 0 and MOD(x, 0) with NULL (a warning, not an
-- error): Optional though both sides are NOT NULL; beside a non-zero literal, set.
SELECT id, id / flag AS per_flag, id DIV flag AS whole, id % flag AS rest,
       MOD(id, flag) AS modulo, id / 2 AS half, id % 3 AS third
FROM posts ORDER BY id;
