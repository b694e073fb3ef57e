-- Starter set; the catalog endpoints' queries come with the catalog issue.

-- name: GetService :one
SELECT * FROM services WHERE id = @id;

-- name: CreateService :one
INSERT INTO services (subcategory_id, name, description, base_price, currency)
VALUES (@subcategory_id, @name, @description, @base_price, @currency)
RETURNING *;

-- name: OfferService :execrows
INSERT INTO provider_services (provider_id, service_id) VALUES (@provider_id, @service_id)
ON CONFLICT DO NOTHING;

-- name: ProvidersOfService :many
SELECT provider_id FROM provider_services WHERE service_id = @service_id ORDER BY provider_id;
