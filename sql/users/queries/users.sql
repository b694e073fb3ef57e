-- Starter set; the list endpoint's queries come with the users issue.

-- name: GetUser :one
SELECT * FROM users WHERE id = @id AND deleted_at IS NULL;

-- name: IsDeleted :one
-- Whether the account was deleted (anonymised; the row stays): its tokens get 401.
SELECT deleted_at IS NOT NULL AS deleted FROM users WHERE id = @id;

-- name: CreateUser :one
INSERT INTO users (email, password_hash, first_name, last_name, phone_number, role)
VALUES (lower(@email::text), @password_hash, @first_name, @last_name, @phone_number, @role)
RETURNING *;

-- name: UserStatistics :one
-- The seed system's statistics over the filtered set: NULL aggregates on an empty set.
SELECT count(*) AS total,
       min(age) AS min_age, max(age) AS max_age, round(avg(age), 2) AS avg_age,
       min(salary) AS min_salary, max(salary) AS max_salary, round(avg(salary), 2) AS avg_salary
FROM users
WHERE deleted_at IS NULL
  AND (sqlc.narg(role)::user_role IS NULL OR role = sqlc.narg(role)::user_role)
  AND (sqlc.narg(department_id)::uuid IS NULL OR department_id = sqlc.narg(department_id)::uuid)
  AND (sqlc.narg(verified)::boolean IS NULL OR verified = sqlc.narg(verified)::boolean)
  AND (sqlc.narg(search)::text IS NULL
       OR (first_name || ' ' || last_name || ' ' || email) ILIKE '%' || sqlc.narg(search)::text || '%');

-- name: UserStatisticsSummary :one
-- UserStatistics without a search, from the summary the writes keep (0006_user_statistics,
-- ADR 0023): a few rows per filter instead of the filtered users. The same numbers to the
-- last digit: avg is the same numeric division (sum / count) that avg() does, then rounded.
SELECT coalesce(sum(total), 0)::bigint AS total,
       min(age_min) AS min_age, max(age_max) AS max_age,
       round(sum(age_sum) / nullif(sum(age_count), 0), 2) AS avg_age,
       min(salary_min) AS min_salary, max(salary_max) AS max_salary,
       round(sum(salary_sum) / nullif(sum(salary_count), 0), 2) AS avg_salary
FROM user_statistics
WHERE (sqlc.narg(role)::user_role IS NULL OR role = sqlc.narg(role)::user_role)
  AND (sqlc.narg(department_id)::uuid IS NULL OR department_id = sqlc.narg(department_id)::uuid)
  AND (sqlc.narg(verified)::boolean IS NULL OR verified = sqlc.narg(verified)::boolean);

-- name: ListUsers :many
-- The moderators' list: the same filters as UserStatistics. The plugin writes a statement
-- per key and direction (fixup: sort), each with its keyset condition after the previous
-- page's (key, id) (lib/http/cursor.py): age and salary are nullable, so ascending puts
-- their NULLs last and descending first, as PostgreSQL orders them.
-- fixup: sort last_name, first_name, email, age, salary, created_at, keyset id
SELECT id, email, first_name, last_name, phone_number, role, verified, department_id, age,
       salary, picture_key, version, created_at
FROM users
WHERE deleted_at IS NULL
  AND (sqlc.narg(role)::user_role IS NULL OR role = sqlc.narg(role)::user_role)
  AND (sqlc.narg(department_id)::uuid IS NULL OR department_id = sqlc.narg(department_id)::uuid)
  AND (sqlc.narg(verified)::boolean IS NULL OR verified = sqlc.narg(verified)::boolean)
  AND (sqlc.narg(search)::text IS NULL
       OR (first_name || ' ' || last_name || ' ' || email) ILIKE '%' || sqlc.narg(search)::text || '%')
LIMIT @row_limit OFFSET @row_offset;
