-- Services (versioned: PATCH and DELETE need the version the caller saw) and which
-- provider offers which. provider_id names a user of the users database: no FK. A
-- provider's services include its archived ones (ADR 0058): what it offered for the
-- orders already placed stays offered.

-- name: CountServices :one
SELECT count(*) AS total FROM services
WHERE (sqlc.narg(subcategory_id)::uuid IS NULL OR subcategory_id = sqlc.narg(subcategory_id))
  AND (sqlc.narg(archived)::boolean IS NULL OR (archived_at IS NOT NULL) = sqlc.narg(archived)::boolean);

-- The list: keyset after the previous page's (key, id) (lib/http/cursor.py; no `after`:
-- from the start), each key on its (key, id) index (0001, 0004); the plugin writes a
-- statement per key and direction (fixup: sort).

-- name: ListServices :many
-- fixup: sort name, base_price, created_at, keyset id
SELECT * FROM services
WHERE (sqlc.narg(subcategory_id)::uuid IS NULL OR subcategory_id = sqlc.narg(subcategory_id))
  AND (sqlc.narg(archived)::boolean IS NULL OR (archived_at IS NOT NULL) = sqlc.narg(archived)::boolean)
LIMIT @row_limit OFFSET @row_offset;

-- name: GetService :one
SELECT * FROM services WHERE id = @id;

-- name: CreateService :one
-- Nothing when the subcategory is archived (read FOR SHARE, as in taxonomy.sql).
INSERT INTO services (subcategory_id, name, description, base_price, currency)
SELECT @subcategory_id, @name, @description, @base_price, @currency
WHERE (SELECT p.archived_at IS NULL FROM subcategories p WHERE p.id = @subcategory_id FOR SHARE)
      IS NOT FALSE
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
WHERE services.id = @id AND services.version = @version
  AND (SELECT p.archived_at IS NULL FROM subcategories p WHERE p.id = sqlc.narg(subcategory_id) FOR SHARE)
      IS NOT FALSE
RETURNING *;

-- name: ArchiveService :one
-- DELETE archives (ADR 0058): orders and provider links keep the id and keep working.
UPDATE services SET archived_at = now(), version = version + 1, updated_at = now()
WHERE id = @id AND version = @version AND archived_at IS NULL
RETURNING *;

-- name: RestoreService :one
UPDATE services SET archived_at = NULL, version = version + 1, updated_at = now()
WHERE id = @id AND version = @version AND archived_at IS NOT NULL
RETURNING *;

-- name: OfferService :execrows
-- Nothing when the service is archived (read FOR SHARE) or already offered.
INSERT INTO provider_services (provider_id, service_id)
SELECT @provider_id, @service_id
WHERE (SELECT p.archived_at IS NULL FROM services p WHERE p.id = @service_id FOR SHARE) IS NOT FALSE
ON CONFLICT DO NOTHING;

-- name: WithdrawService :execrows
DELETE FROM provider_services WHERE provider_id = @provider_id AND service_id = @service_id;

-- name: CountServicesOfProvider :one
SELECT count(*) AS total FROM provider_services WHERE provider_id = @provider_id;

-- name: ListServicesOfProvider :many
-- fixup: sort s.name, keyset s.id
SELECT s.* FROM services s JOIN provider_services p ON p.service_id = s.id
WHERE p.provider_id = @provider_id
LIMIT @row_limit OFFSET @row_offset;

-- name: CountProvidersOfService :one
SELECT count(*) AS total FROM provider_services WHERE service_id = @service_id;

-- name: ListProvidersOfService :many
-- A provider is offered once per service (the primary key): no tie to break.
-- fixup: sort provider_id
SELECT * FROM provider_services WHERE service_id = @service_id
LIMIT @row_limit OFFSET @row_offset;

-- name: EraseProvider :exec
-- The erasure of a provider (ADR 0060): they offer nothing any more.
DELETE FROM provider_services WHERE provider_id = @provider_id;
