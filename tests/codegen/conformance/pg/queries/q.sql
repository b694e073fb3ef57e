-- name: CreateUser :one
INSERT INTO users (name, bio, age, salary, level, profile, tags, role, sign, left_at)
VALUES (@name, sqlc.narg(bio), sqlc.narg(age), sqlc.narg(salary), @level, sqlc.narg(profile),
        @tags, sqlc.narg(role), sqlc.narg(sign), sqlc.narg(left_at))
RETURNING id;

-- name: CreatePost :exec
INSERT INTO posts (user_id, title) VALUES (@user_id, @title);

-- name: CreateArchived :exec
INSERT INTO archive.users (age, name) VALUES (@age, @name);

-- name: ProfileHasKeyAndTag :many
-- issue 14.1: the server types both parameters text (sqlc: jsonb, text[])
SELECT id FROM users WHERE profile ? $1 AND $2 = ANY(tags) ORDER BY id;

-- name: UsersInSlice :many
SELECT id FROM users WHERE id IN (sqlc.slice(ids)) ORDER BY id;

-- name: UsersNotInSlice :many
SELECT id FROM users WHERE id NOT IN (sqlc.slice(ids)) ORDER BY id;

-- name: UsersWithPostCount :many
SELECT sqlc.embed(users), (SELECT count(*) FROM posts p WHERE p.user_id = users.id) AS post_count
FROM users ORDER BY users.id;

-- name: UserPairs :many
SELECT sqlc.embed(a), sqlc.embed(b) FROM users a JOIN users b ON b.level = a.level AND b.id > a.id
ORDER BY a.id, b.id;

-- name: ArchivedUsers :many
SELECT * FROM archive.users ORDER BY id;

-- name: UsersByRole :many
SELECT id, role, sign FROM users WHERE role = $1 ORDER BY id;

-- name: SignsAndProfiles :many
SELECT sign, profile, role FROM users ORDER BY id;

-- name: EmptyRows :many
SELECT FROM bar;

-- name: StrictExpressions :one
-- Each expression is NULL when its input is.
SELECT round(salary / 12, 2) AS monthly, ceil(salary) AS ceiled, floor(salary) AS floored,
       abs(age) AS abs_age, upper(bio) AS upper_bio, length(bio) AS bio_length,
       salary - salary / @divisor::numeric AS net, age::text AS age_text, age > 30 AS older,
       date_trunc('month', left_at) AS left_month, nullif(level, 1) AS level_unless_one,
       array_length(tags, 1) AS tag_count, CAST(profile ->> 'k' AS int) AS k,
       profile -> 'k' AS k_json, tags[1] AS first_tag,
       CASE WHEN level > 5 THEN 'high' END AS band,
       CASE WHEN level > 5 THEN 'high' ELSE bio END AS band_or_bio
FROM users WHERE id = @id;

-- name: NeverNullExpressions :one
-- Each expression is set even on a row of NULLs.
SELECT coalesce(age, 0) AS age_or_zero, greatest(age, 1) AS at_least_one, age IS NULL AS no_age,
       (age > 1) IS TRUE AS surely_older, concat(bio, '!') AS bio_bang, name || '!' AS name_bang,
       current_date AS today, 42 AS answer, 'x' AS letter, level + 1 AS next_level,
       (SELECT count(*) FROM posts) AS all_posts, EXISTS (SELECT 1 FROM posts) AS any_posts
FROM users u WHERE u.id = @id;

-- name: WindowValues :many
SELECT id, lag(level) OVER w AS previous_level, nth_value(level, 2) OVER w AS second_level,
       row_number() OVER w AS position
FROM users WINDOW w AS (ORDER BY id) ORDER BY id;

-- name: NamesAndBios :many
SELECT name FROM users UNION ALL SELECT bio FROM users;

-- name: LatestPostPerUser :many
SELECT u.id, p.title, p.total FROM users u
LEFT JOIN LATERAL (SELECT title, count(*) OVER () AS total FROM posts WHERE user_id = u.id
                   ORDER BY id DESC LIMIT 1) p ON true
ORDER BY u.id;

-- name: PostCounts :many
SELECT u.id, c.n FROM users u LEFT JOIN (SELECT user_id, count(*) AS n FROM posts GROUP BY user_id) c
ON c.user_id = u.id ORDER BY u.id;

-- name: TotalSalary :one
WITH s AS (SELECT sum(salary) AS total, count(*) AS people FROM users)
SELECT total, people FROM s;

-- name: CreateExotic :one
INSERT INTO exotic (b, vb, mac, mac8, m, pt, bx, ln, ls, pa, pg, ci, r, nr, dr, mr, tsv, x)
VALUES (@b, @vb, @mac, @mac8, @m, @pt, @bx, @ln, @ls, @pa, @pg, @ci, @r, @nr, @dr, @mr, @tsv, @x)
RETURNING *;

-- name: CreateParcel :one
INSERT INTO parcels (ship, home) VALUES (@ship, sqlc.narg(home)) RETURNING *;
