-- Profiles (services/users/handlers.py, pictures.py, passwords.py): read, PATCH, picture,
-- password, anonymising delete, and the public provider card. A deleted (anonymised) user
-- is never found.

-- name: LockUser :one
-- The row as it is before a change that must know the old values (picture key, hash).
SELECT * FROM users WHERE id = @id AND deleted_at IS NULL FOR UPDATE;

-- name: UpdateProfile :one
-- PATCH (docs/recipes.md): coalesce keeps a required column, a set-flag lets null clear
-- a nullable one. Only when the caller saw the current version (If-Match).
UPDATE users
SET first_name = coalesce(sqlc.narg(first_name), first_name),
    last_name = coalesce(sqlc.narg(last_name), last_name),
    phone_number = coalesce(sqlc.narg(phone_number), phone_number),
    role = coalesce(sqlc.narg(role)::user_role, role),
    verified = coalesce(sqlc.narg(verified)::boolean, verified),
    department_id = CASE WHEN sqlc.arg(set_department_id)::bool
                         THEN sqlc.narg(department_id)::uuid ELSE department_id END,
    age = CASE WHEN sqlc.arg(set_age)::bool THEN sqlc.narg(age)::integer ELSE age END,
    salary = CASE WHEN sqlc.arg(set_salary)::bool
                  THEN sqlc.narg(salary)::numeric ELSE salary END,
    version = version + 1,
    updated_at = now()
WHERE id = @id AND version = @version AND deleted_at IS NULL
RETURNING *;

-- name: SetPicture :one
UPDATE users
SET picture_key = @picture_key, version = version + 1, updated_at = now()
WHERE id = @id AND deleted_at IS NULL
RETURNING *;

-- name: ChangePassword :execrows
-- Only while the hash is the one the old password was checked against: a concurrent
-- change in between wins, this one changes nothing.
UPDATE users SET password_hash = @new_hash, updated_at = now()
WHERE id = @id AND password_hash = @old_hash AND disabled_at IS NULL;

-- name: EraseUser :one
-- DELETE and the erasure consumer (ADR 0060): the id stays (orders, chat and points refer
-- to it), the rest is scrubbed, whatever the version; an erased row keeps its times.
-- Returns the picture key the row held before (its object is deleted after the commit).
UPDATE users AS u
SET email = 'deleted+' || u.id::text || '@invalid',
    password_hash = '!',
    first_name = 'Deleted',
    last_name = 'Deleted',
    phone_number = '000',
    verified = false,
    department_id = NULL,
    age = NULL,
    salary = NULL,
    picture_key = NULL,
    disabled_at = coalesce(u.disabled_at, now()),
    deleted_at = coalesce(u.deleted_at, now()),
    version = u.version + 1,
    updated_at = now()
FROM (SELECT b.id AS erased_id, b.picture_key AS old_picture_key FROM users AS b
      WHERE b.id = @id FOR UPDATE) AS before
WHERE u.id = before.erased_id
RETURNING before.old_picture_key;

-- name: DeleteProviderDetails :exec
DELETE FROM provider_details WHERE user_id = @user_id;

-- name: GetProvider :one
SELECT id, first_name, last_name, picture_key, department_id
FROM users
WHERE id = @id AND role = 'PROVIDER' AND deleted_at IS NULL;
