-- Starter set; the list endpoint's queries come with the users issue.

-- name: GetUser :one
SELECT * FROM users WHERE id = @id AND deleted_at IS NULL;

-- name: IsDeleted :one
-- Whether the account was deleted (anonymised; the row stays): its tokens get 401.
SELECT deleted_at IS NOT NULL AS deleted FROM users WHERE id = @id;

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
-- The moderators' list: the same filters as UserStatistics. One query orders by any
-- whitelisted key (CASE): this list is filtered and trigram-searched, so no single index
-- order would serve it (unlike the departments list, see ADR 0005).
SELECT id, email, first_name, last_name, phone_number, role, verified, department_id, age,
       salary, picture_key, version, created_at
FROM users
WHERE deleted_at IS NULL
  AND (sqlc.narg(role)::user_role IS NULL OR role = sqlc.narg(role)::user_role)
  AND (sqlc.narg(department_id)::uuid IS NULL OR department_id = sqlc.narg(department_id)::uuid)
  AND (sqlc.narg(verified)::boolean IS NULL OR verified = sqlc.narg(verified)::boolean)
  AND (sqlc.narg(search)::text IS NULL
       OR (first_name || ' ' || last_name || ' ' || email) ILIKE '%' || sqlc.narg(search)::text || '%')
  -- keyset (lib/http/cursor.py): after the previous page's (key, id); NULL after_id: from
  -- the start. One branch per key and direction: a custom plan keeps only the live one,
  -- an index condition. age and salary are nullable: ASC puts NULLs last, DESC first.
  AND (sqlc.narg(after_id)::uuid IS NULL
    OR (@orderby::text = 'last_name' AND @descending::boolean = false
        AND (last_name, id) > (sqlc.narg(after_text)::text, sqlc.narg(after_id)::uuid))
    OR (@orderby::text = 'last_name' AND @descending::boolean
        AND (last_name, id) < (sqlc.narg(after_text)::text, sqlc.narg(after_id)::uuid))
    OR (@orderby::text = 'first_name' AND @descending::boolean = false
        AND (first_name, id) > (sqlc.narg(after_text)::text, sqlc.narg(after_id)::uuid))
    OR (@orderby::text = 'first_name' AND @descending::boolean
        AND (first_name, id) < (sqlc.narg(after_text)::text, sqlc.narg(after_id)::uuid))
    OR (@orderby::text = 'email' AND @descending::boolean = false
        AND (email, id) > (sqlc.narg(after_text)::text, sqlc.narg(after_id)::uuid))
    OR (@orderby::text = 'email' AND @descending::boolean
        AND (email, id) < (sqlc.narg(after_text)::text, sqlc.narg(after_id)::uuid))
    OR (@orderby::text = 'created_at' AND @descending::boolean = false
        AND (created_at, id) > (sqlc.narg(after_time)::timestamptz, sqlc.narg(after_id)::uuid))
    OR (@orderby::text = 'created_at' AND @descending::boolean
        AND (created_at, id) < (sqlc.narg(after_time)::timestamptz, sqlc.narg(after_id)::uuid))
    OR (@orderby::text = 'age' AND @descending::boolean = false
        AND ((age, id) > (sqlc.narg(after_int)::integer, sqlc.narg(after_id)::uuid)
             OR (age IS NULL AND (sqlc.narg(after_int)::integer IS NOT NULL
                                  OR id > sqlc.narg(after_id)::uuid))))
    OR (@orderby::text = 'age' AND @descending::boolean
        AND ((age, id) < (sqlc.narg(after_int)::integer, sqlc.narg(after_id)::uuid)
             OR (sqlc.narg(after_int)::integer IS NULL
                 AND (age IS NOT NULL OR id < sqlc.narg(after_id)::uuid))))
    OR (@orderby::text = 'salary' AND @descending::boolean = false
        AND ((salary, id) > (sqlc.narg(after_num)::numeric, sqlc.narg(after_id)::uuid)
             OR (salary IS NULL AND (sqlc.narg(after_num)::numeric IS NOT NULL
                                     OR id > sqlc.narg(after_id)::uuid))))
    OR (@orderby::text = 'salary' AND @descending::boolean
        AND ((salary, id) < (sqlc.narg(after_num)::numeric, sqlc.narg(after_id)::uuid)
             OR (sqlc.narg(after_num)::numeric IS NULL
                 AND (salary IS NOT NULL OR id < sqlc.narg(after_id)::uuid)))))
ORDER BY
  CASE WHEN @orderby::text = 'last_name' AND @descending::boolean = false THEN last_name END ASC,
  CASE WHEN @orderby::text = 'last_name' AND @descending::boolean THEN last_name END DESC,
  CASE WHEN @orderby::text = 'first_name' AND @descending::boolean = false THEN first_name END ASC,
  CASE WHEN @orderby::text = 'first_name' AND @descending::boolean THEN first_name END DESC,
  CASE WHEN @orderby::text = 'email' AND @descending::boolean = false THEN email END ASC,
  CASE WHEN @orderby::text = 'email' AND @descending::boolean THEN email END DESC,
  CASE WHEN @orderby::text = 'age' AND @descending::boolean = false THEN age END ASC,
  CASE WHEN @orderby::text = 'age' AND @descending::boolean THEN age END DESC,
  CASE WHEN @orderby::text = 'salary' AND @descending::boolean = false THEN salary END ASC,
  CASE WHEN @orderby::text = 'salary' AND @descending::boolean THEN salary END DESC,
  CASE WHEN @orderby::text = 'created_at' AND @descending::boolean = false THEN created_at END ASC,
  CASE WHEN @orderby::text = 'created_at' AND @descending::boolean THEN created_at END DESC,
  CASE WHEN @descending::boolean = false THEN id END ASC,
  CASE WHEN @descending::boolean THEN id END DESC
LIMIT @row_limit OFFSET @row_offset;
