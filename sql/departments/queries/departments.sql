-- One list query per orderby and direction: each can walk its index (no CASE in ORDER BY).

-- name: CountDepartments :one
SELECT count(*) AS total FROM departments;

-- name: CountDepartmentsStamped :one
-- The total and the table's version stamp in one statement, so one snapshot (ADR 0019):
-- the list's ETag costs no round trip of its own.
SELECT (SELECT count(*) FROM departments) AS total,
       (SELECT version FROM table_versions WHERE name = 'departments') AS version;

-- name: ListDepartmentsByNameAsc :many
SELECT * FROM departments ORDER BY name ASC, id ASC LIMIT @row_limit OFFSET @row_offset;

-- name: ListDepartmentsByNameDesc :many
SELECT * FROM departments ORDER BY name DESC, id DESC LIMIT @row_limit OFFSET @row_offset;

-- name: ListDepartmentsByAddressAsc :many
SELECT * FROM departments ORDER BY address ASC, id ASC LIMIT @row_limit OFFSET @row_offset;

-- name: ListDepartmentsByAddressDesc :many
SELECT * FROM departments ORDER BY address DESC, id DESC LIMIT @row_limit OFFSET @row_offset;

-- name: ListDepartmentsByCreatedAtAsc :many
SELECT * FROM departments ORDER BY created_at ASC, id ASC LIMIT @row_limit OFFSET @row_offset;

-- name: ListDepartmentsByCreatedAtDesc :many
SELECT * FROM departments ORDER BY created_at DESC, id DESC LIMIT @row_limit OFFSET @row_offset;

-- name: GetDepartment :one
SELECT * FROM departments WHERE id = @id;

-- name: DepartmentsExist :many
SELECT id FROM departments WHERE id = ANY(@ids::uuid[]);

-- name: CreateDepartment :one
INSERT INTO departments (name, address) VALUES (@name, @address) RETURNING *;

-- name: UpdateDepartment :one
-- Only when the caller saw the current version (If-Match); NULL keeps a field.
UPDATE departments
SET name = coalesce(sqlc.narg(name), name),
    address = coalesce(sqlc.narg(address), address),
    version = version + 1,
    updated_at = now()
WHERE id = @id AND version = @version
RETURNING *;

-- name: DeleteDepartment :execrows
DELETE FROM departments WHERE id = @id AND version = @version;

-- name: CopyDepartments :copyfrom
INSERT INTO departments (id, name, address) VALUES ($1, $2, $3);
