-- Services (versioned: PATCH and DELETE need the version the caller saw) and which
-- provider offers which. provider_id names a user of the users database: no FK.

-- name: CountServices :one
SELECT count(*) AS total FROM services
WHERE sqlc.narg(subcategory_id)::uuid IS NULL OR subcategory_id = sqlc.narg(subcategory_id);

-- The lists: keyset after the previous page's (key, id) (lib/http/cursor.py; NULL after_id:
-- from the start), each on its (key, id) index (0001, 0004).

-- name: ListServicesByNameAsc :many
SELECT * FROM services
WHERE (sqlc.narg(subcategory_id)::uuid IS NULL OR subcategory_id = sqlc.narg(subcategory_id))
  AND (sqlc.narg(after_id)::uuid IS NULL
       OR (name, id) > (sqlc.narg(after_key)::text, sqlc.narg(after_id)::uuid))
ORDER BY name ASC, id ASC LIMIT @row_limit OFFSET @row_offset;

-- name: ListServicesByNameDesc :many
SELECT * FROM services
WHERE (sqlc.narg(subcategory_id)::uuid IS NULL OR subcategory_id = sqlc.narg(subcategory_id))
  AND (sqlc.narg(after_id)::uuid IS NULL
       OR (name, id) < (sqlc.narg(after_key)::text, sqlc.narg(after_id)::uuid))
ORDER BY name DESC, id DESC LIMIT @row_limit OFFSET @row_offset;

-- name: ListServicesByBasePriceAsc :many
SELECT * FROM services
WHERE (sqlc.narg(subcategory_id)::uuid IS NULL OR subcategory_id = sqlc.narg(subcategory_id))
  AND (sqlc.narg(after_id)::uuid IS NULL
       OR (base_price, id) > (sqlc.narg(after_key)::numeric, sqlc.narg(after_id)::uuid))
ORDER BY base_price ASC, id ASC LIMIT @row_limit OFFSET @row_offset;

-- name: ListServicesByBasePriceDesc :many
SELECT * FROM services
WHERE (sqlc.narg(subcategory_id)::uuid IS NULL OR subcategory_id = sqlc.narg(subcategory_id))
  AND (sqlc.narg(after_id)::uuid IS NULL
       OR (base_price, id) < (sqlc.narg(after_key)::numeric, sqlc.narg(after_id)::uuid))
ORDER BY base_price DESC, id DESC LIMIT @row_limit OFFSET @row_offset;

-- name: ListServicesByCreatedAtAsc :many
SELECT * FROM services
WHERE (sqlc.narg(subcategory_id)::uuid IS NULL OR subcategory_id = sqlc.narg(subcategory_id))
  AND (sqlc.narg(after_id)::uuid IS NULL
       OR (created_at, id) > (sqlc.narg(after_key)::timestamptz, sqlc.narg(after_id)::uuid))
ORDER BY created_at ASC, id ASC LIMIT @row_limit OFFSET @row_offset;

-- name: ListServicesByCreatedAtDesc :many
SELECT * FROM services
WHERE (sqlc.narg(subcategory_id)::uuid IS NULL OR subcategory_id = sqlc.narg(subcategory_id))
  AND (sqlc.narg(after_id)::uuid IS NULL
       OR (created_at, id) < (sqlc.narg(after_key)::timestamptz, sqlc.narg(after_id)::uuid))
ORDER BY created_at DESC, id DESC LIMIT @row_limit OFFSET @row_offset;

-- name: GetService :one
SELECT * FROM services WHERE id = @id;

-- name: CreateService :one
INSERT INTO services (subcategory_id, name, description, base_price, currency)
VALUES (@subcategory_id, @name, @description, @base_price, @currency)
RETURNING *;

-- name: UpdateService :one
-- Only when the caller saw the current version (If-Match); NULL keeps a field.
UPDATE services
SET subcategory_id = coalesce(sqlc.narg(subcategory_id), subcategory_id),
    name = coalesce(sqlc.narg(name), name),
    description = coalesce(sqlc.narg(description), description),
    base_price = coalesce(sqlc.narg(base_price), base_price),
    currency = coalesce(sqlc.narg(currency), currency),
    version = version + 1,
    updated_at = now()
WHERE id = @id AND version = @version
RETURNING *;

-- name: DeleteService :execrows
DELETE FROM services WHERE id = @id AND version = @version;

-- name: OfferService :execrows
INSERT INTO provider_services (provider_id, service_id) VALUES (@provider_id, @service_id)
ON CONFLICT DO NOTHING;

-- name: WithdrawService :execrows
DELETE FROM provider_services WHERE provider_id = @provider_id AND service_id = @service_id;

-- name: CountServicesOfProvider :one
SELECT count(*) AS total FROM provider_services WHERE provider_id = @provider_id;

-- name: ListServicesOfProviderByNameAsc :many
SELECT s.* FROM services s JOIN provider_services p ON p.service_id = s.id
WHERE p.provider_id = @provider_id
  AND (sqlc.narg(after_id)::uuid IS NULL
       OR (s.name, s.id) > (sqlc.narg(after_key)::text, sqlc.narg(after_id)::uuid))
ORDER BY s.name ASC, s.id ASC LIMIT @row_limit OFFSET @row_offset;

-- name: ListServicesOfProviderByNameDesc :many
SELECT s.* FROM services s JOIN provider_services p ON p.service_id = s.id
WHERE p.provider_id = @provider_id
  AND (sqlc.narg(after_id)::uuid IS NULL
       OR (s.name, s.id) < (sqlc.narg(after_key)::text, sqlc.narg(after_id)::uuid))
ORDER BY s.name DESC, s.id DESC LIMIT @row_limit OFFSET @row_offset;

-- name: CountProvidersOfService :one
SELECT count(*) AS total FROM provider_services WHERE service_id = @service_id;

-- name: ListProvidersOfServiceAsc :many
SELECT * FROM provider_services WHERE service_id = @service_id
ORDER BY provider_id ASC LIMIT @row_limit OFFSET @row_offset;

-- name: ListProvidersOfServiceDesc :many
SELECT * FROM provider_services WHERE service_id = @service_id
ORDER BY provider_id DESC LIMIT @row_limit OFFSET @row_offset;
