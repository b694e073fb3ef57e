-- Starter set; the list endpoint's queries come with the users issue.

-- name: GetUser :one
SELECT * FROM users WHERE id = @id AND deleted_at IS NULL;

-- name: GetUserByEmail :one
SELECT * FROM users WHERE email = lower(@email::text) AND disabled_at IS NULL;

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
