-- The list is one query with its sort keys (fixup: sort): the plugin writes a statement per
-- key and direction, each can walk its index (no CASE in ORDER BY).

-- name: CountDepartments :one
SELECT count(*) AS total FROM departments;

-- name: CountDepartmentsStamped :one
-- The total and the table's version stamp in one statement, so one snapshot (ADR 0019):
-- the list's ETag costs no round trip of its own. The total is the count the writes keep
-- beside the stamp (migration 0005); count(*) runs only where that is NULL (PostgreSQL
-- evaluates an InitPlan when first used, and coalesce stops at the first non-NULL).
-- `archived` picks the state (ADR 0058): NULL every row, false the live ones (the kept
-- count less the archived rows, read on their partial index, migration 0008), true the
-- archived ones; CASE evaluates only the subqueries its branch uses.
SELECT CASE WHEN sqlc.narg(archived)::boolean IS NULL THEN
                coalesce((SELECT row_count FROM table_versions WHERE name = 'departments'),
                         (SELECT count(*) FROM departments))
            WHEN sqlc.narg(archived)::boolean THEN
                (SELECT count(*) FROM departments WHERE archived_at IS NOT NULL)
            ELSE coalesce((SELECT row_count FROM table_versions WHERE name = 'departments'),
                          (SELECT count(*) FROM departments))
                 - (SELECT count(*) FROM departments WHERE archived_at IS NOT NULL)
       END AS total,
       (SELECT version FROM table_versions WHERE name = 'departments') AS version;

-- The list's page with its total and the table's version stamp (ADR 0019) in one statement,
-- one snapshot: the scalar subqueries run once (InitPlans; the total as in
-- CountDepartmentsStamped) and `fixup: once` reads them from the first row only
-- (PageDepartmentsPage: total, version, rows). A page past the end has no row to carry
-- them: CountDepartmentsStamped answers then.

-- name: PageDepartments :many
-- fixup: once total, version
-- fixup: sort name, address, created_at, then id
SELECT CASE WHEN sqlc.narg(archived)::boolean IS NULL THEN
                coalesce((SELECT row_count FROM table_versions WHERE name = 'departments'),
                         (SELECT count(*) FROM departments))
            WHEN sqlc.narg(archived)::boolean THEN
                (SELECT count(*) FROM departments WHERE archived_at IS NOT NULL)
            ELSE coalesce((SELECT row_count FROM table_versions WHERE name = 'departments'),
                          (SELECT count(*) FROM departments))
                 - (SELECT count(*) FROM departments WHERE archived_at IS NOT NULL)
       END AS total,
       (SELECT version FROM table_versions WHERE name = 'departments') AS version,
       departments.*
FROM departments
WHERE sqlc.narg(archived)::boolean IS NULL
   OR (archived_at IS NOT NULL) = sqlc.narg(archived)::boolean
LIMIT @row_limit OFFSET @row_offset;

-- name: PlainDepartmentsPage :many
-- The plain page (bench/codegen_overhead.py and bench/data_access.py compare it by hand).
SELECT * FROM departments ORDER BY name ASC, id ASC LIMIT @row_limit OFFSET @row_offset;

-- name: GetDepartment :one
SELECT * FROM departments WHERE id = @id;

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

-- name: ArchiveDepartment :one
-- DELETE archives (ADR 0058): the row stays, users keep its id. A new version, so its ETag
-- and the table's stamp (the lists' tags, the kept pages) move. Only a live row at the
-- version the caller saw; an archived one is left as it is (a repeated DELETE).
UPDATE departments
SET archived_at = now(), version = version + 1, updated_at = now()
WHERE id = @id AND version = @version AND archived_at IS NULL
RETURNING *;

-- name: RestoreDepartment :one
-- ADMIN's restore: the archived row at the version the caller saw is live again.
UPDATE departments
SET archived_at = NULL, version = version + 1, updated_at = now()
WHERE id = @id AND version = @version AND archived_at IS NOT NULL
RETURNING *;

-- name: CopyDepartments :copyfrom
INSERT INTO departments (id, name, address) VALUES ($1, $2, $3);
