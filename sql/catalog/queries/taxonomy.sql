-- Category types -> categories -> subcategories. Each list is one query with its sort
-- keys (fixup: sort): the plugin writes a statement per key and direction, each walks its
-- index; the parent filter is optional (NULL: every row).
-- A duplicate name within a parent, an unknown parent and a parent with children are
-- refused by the constraints (UNIQUE, FOREIGN KEY ... ON DELETE RESTRICT).

-- name: CountCategoryTypes :one
SELECT count(*) AS total FROM category_types;

-- name: ListCategoryTypes :many
-- fixup: sort name, created_at, then id
SELECT * FROM category_types LIMIT @row_limit OFFSET @row_offset;

-- name: GetCategoryType :one
SELECT * FROM category_types WHERE id = @id;

-- name: CreateCategoryType :one
INSERT INTO category_types (name) VALUES (@name) RETURNING *;

-- name: UpdateCategoryType :one
UPDATE category_types
SET name = coalesce(sqlc.narg(name), name), version = version + 1, updated_at = now()
WHERE id = @id AND version = @version
RETURNING *;

-- name: DeleteCategoryType :execrows
DELETE FROM category_types WHERE id = @id AND version = @version;

-- name: CountCategories :one
SELECT count(*) AS total FROM categories
WHERE sqlc.narg(type_id)::uuid IS NULL OR type_id = sqlc.narg(type_id);

-- name: ListCategories :many
-- fixup: sort name, created_at, then id
SELECT * FROM categories
WHERE sqlc.narg(type_id)::uuid IS NULL OR type_id = sqlc.narg(type_id)
LIMIT @row_limit OFFSET @row_offset;

-- name: GetCategory :one
SELECT * FROM categories WHERE id = @id;

-- name: CreateCategory :one
INSERT INTO categories (type_id, name) VALUES (@type_id, @name) RETURNING *;

-- name: UpdateCategory :one
UPDATE categories
SET type_id = coalesce(sqlc.narg(type_id), type_id),
    name = coalesce(sqlc.narg(name), name),
    version = version + 1,
    updated_at = now()
WHERE id = @id AND version = @version
RETURNING *;

-- name: DeleteCategory :execrows
DELETE FROM categories WHERE id = @id AND version = @version;

-- name: CountSubcategories :one
SELECT count(*) AS total FROM subcategories
WHERE sqlc.narg(category_id)::uuid IS NULL OR category_id = sqlc.narg(category_id);

-- name: ListSubcategories :many
-- fixup: sort name, created_at, then id
SELECT * FROM subcategories
WHERE sqlc.narg(category_id)::uuid IS NULL OR category_id = sqlc.narg(category_id)
LIMIT @row_limit OFFSET @row_offset;

-- name: GetSubcategory :one
SELECT * FROM subcategories WHERE id = @id;

-- name: CreateSubcategory :one
INSERT INTO subcategories (category_id, name) VALUES (@category_id, @name) RETURNING *;

-- name: UpdateSubcategory :one
UPDATE subcategories
SET category_id = coalesce(sqlc.narg(category_id), category_id),
    name = coalesce(sqlc.narg(name), name),
    version = version + 1,
    updated_at = now()
WHERE id = @id AND version = @version
RETURNING *;

-- name: DeleteSubcategory :execrows
DELETE FROM subcategories WHERE id = @id AND version = @version;
