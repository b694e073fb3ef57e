-- name: AddPair :execresult
INSERT INTO pair (id, nick, x, y) VALUES (?, ?, ?, ?);

-- name: Totals :many
SELECT id, total FROM (SELECT id, x + y AS total FROM pair) AS t ORDER BY id;

-- name: ByNick :many
SELECT id FROM pair WHERE nick = sqlc.arg(nick) OR sqlc.arg(nick) = '' ORDER BY id;

-- name: Above :many
SELECT id FROM pair WHERE x > CAST(sqlc.arg(floor) AS SIGNED) ORDER BY id;

-- name: Stats :one
SELECT AVG(x) AS mean_x, GROUP_CONCAT(nick ORDER BY id) AS nicks FROM pair;
