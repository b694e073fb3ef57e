-- Category types -> categories -> subcategories. Each list is one query with its sort
-- keys (fixup: sort): the plugin writes a statement per key and direction, each walks its
-- index; the parent filter is optional (NULL: every row).
-- A duplicate name within a parent and an unknown parent are refused by the constraints
-- (UNIQUE, FOREIGN KEY). DELETE archives (ADR 0058): `archived` picks the lists' rows (NULL
-- every row, false the live ones, true the archived ones); a write that names a parent
-- reads it FOR SHARE and writes nothing when it is archived (NULL: no such parent, and the
-- FOREIGN KEY refuses), so an archive racing it waits, and no new child lands under an
-- archived parent.

-- name: CountCategoryTypes :one
SELECT count(*) AS total FROM category_types
WHERE (sqlc.narg(archived)::boolean IS NULL OR (archived_at IS NOT NULL) = sqlc.narg(archived)::boolean);

-- name: ListCategoryTypes :many
-- fixup: sort name, created_at, then id
SELECT * FROM category_types
WHERE (sqlc.narg(archived)::boolean IS NULL OR (archived_at IS NOT NULL) = sqlc.narg(archived)::boolean)
LIMIT @row_limit OFFSET @row_offset;

-- name: GetCategoryType :one
SELECT * FROM category_types WHERE id = @id;

-- name: CreateCategoryType :one
INSERT INTO category_types (name) VALUES (@name) RETURNING *;

-- name: UpdateCategoryType :one
UPDATE category_types
SET name = coalesce(sqlc.narg(name), name), version = version + 1, updated_at = now()
WHERE id = @id AND version = @version
RETURNING *;

-- name: ArchiveCategoryType :one
UPDATE category_types SET archived_at = now(), version = version + 1, updated_at = now()
WHERE id = @id AND version = @version AND archived_at IS NULL
RETURNING *;

-- name: RestoreCategoryType :one
UPDATE category_types SET archived_at = NULL, version = version + 1, updated_at = now()
WHERE id = @id AND version = @version AND archived_at IS NOT NULL
RETURNING *;

-- name: CountCategories :one
SELECT count(*) AS total FROM categories
WHERE (sqlc.narg(type_id)::uuid IS NULL OR type_id = sqlc.narg(type_id))
  AND (sqlc.narg(archived)::boolean IS NULL OR (archived_at IS NOT NULL) = sqlc.narg(archived)::boolean);

-- name: ListCategories :many
-- fixup: sort name, created_at, then id
SELECT * FROM categories
WHERE (sqlc.narg(type_id)::uuid IS NULL OR type_id = sqlc.narg(type_id))
  AND (sqlc.narg(archived)::boolean IS NULL OR (archived_at IS NOT NULL) = sqlc.narg(archived)::boolean)
LIMIT @row_limit OFFSET @row_offset;

-- name: GetCategory :one
SELECT * FROM categories WHERE id = @id;

-- name: CreateCategory :one
INSERT INTO categories (type_id, name)
SELECT @type_id, @name
WHERE (SELECT p.archived_at IS NULL FROM category_types p WHERE p.id = @type_id FOR SHARE) IS NOT FALSE
RETURNING *;

-- name: UpdateCategory :one
UPDATE categories
SET type_id = coalesce(sqlc.narg(type_id), type_id),
    name = coalesce(sqlc.narg(name), name),
    version = version + 1,
    updated_at = now()
WHERE categories.id = @id AND categories.version = @version
  AND (SELECT p.archived_at IS NULL FROM category_types p WHERE p.id = sqlc.narg(type_id) FOR SHARE)
      IS NOT FALSE
RETURNING *;

-- name: ArchiveCategory :one
UPDATE categories SET archived_at = now(), version = version + 1, updated_at = now()
WHERE id = @id AND version = @version AND archived_at IS NULL
RETURNING *;

-- name: RestoreCategory :one
UPDATE categories SET archived_at = NULL, version = version + 1, updated_at = now()
WHERE id = @id AND version = @version AND archived_at IS NOT NULL
RETURNING *;

-- name: CountSubcategories :one
SELECT count(*) AS total FROM subcategories
WHERE (sqlc.narg(category_id)::uuid IS NULL OR category_id = sqlc.narg(category_id))
  AND (sqlc.narg(archived)::boolean IS NULL OR (archived_at IS NOT NULL) = sqlc.narg(archived)::boolean);

-- name: ListSubcategories :many
-- fixup: sort name, created_at, then id
SELECT * FROM subcategories
WHERE (sqlc.narg(category_id)::uuid IS NULL OR category_id = sqlc.narg(category_id))
  AND (sqlc.narg(archived)::boolean IS NULL OR (archived_at IS NOT NULL) = sqlc.narg(archived)::boolean)
LIMIT @row_limit OFFSET @row_offset;

-- name: GetSubcategory :one
SELECT * FROM subcategories WHERE id = @id;

-- name: CreateSubcategory :one
INSERT INTO subcategories (category_id, name)
SELECT @category_id, @name
WHERE (SELECT p.archived_at IS NULL FROM categories p WHERE p.id = @category_id FOR SHARE) IS NOT FALSE
RETURNING *;

-- name: UpdateSubcategory :one
UPDATE subcategories
SET category_id = coalesce(sqlc.narg(category_id), category_id),
    name = coalesce(sqlc.narg(name), name),
    version = version + 1,
    updated_at = now()
WHERE subcategories.id = @id AND subcategories.version = @version
  AND (SELECT p.archived_at IS NULL FROM categories p WHERE p.id = sqlc.narg(category_id) FOR SHARE)
      IS NOT FALSE
RETURNING *;

-- name: ArchiveSubcategory :one
UPDATE subcategories SET archived_at = now(), version = version + 1, updated_at = now()
WHERE id = @id AND version = @version AND archived_at IS NULL
RETURNING *;

-- name: RestoreSubcategory :one
UPDATE subcategories SET archived_at = NULL, version = version + 1, updated_at = now()
WHERE id = @id AND version = @version AND archived_at IS NOT NULL
RETURNING *;
