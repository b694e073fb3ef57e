-- Orders: create, read with visibility, PATCH and cancel (owner, while OPEN).
-- Visibility (docs/api.md, "orders"): the customer sees own orders; a provider OPEN
-- orders of the services they offer (@offered, read from catalog) plus every order where
-- they have an offer or a job; ADMIN (@see_all) everything.

-- name: ListCurrencies :many
SELECT * FROM currencies ORDER BY code;

-- name: GetOrder :one
SELECT * FROM orders WHERE id = @id;

-- name: CreateOrder :one
INSERT INTO orders (customer_id, customer_name, service_id, description, address, time_start, time_end)
VALUES (@customer_id, sqlc.narg(customer_name), @service_id, @description, @address, @time_start, @time_end)
RETURNING *;

-- name: ProviderInvolved :one
-- Has the provider an offer or a job on the order (any status)?
SELECT EXISTS (SELECT 1 FROM offers f WHERE f.order_id = @order_id::uuid AND f.provider_id = @provider_id::uuid)
    OR EXISTS (SELECT 1 FROM jobs j WHERE j.order_id = @order_id::uuid AND j.provider_id = @provider_id::uuid)
    AS involved;

-- name: CountOrders :one
SELECT count(*) FROM orders o
WHERE (@see_all::boolean
       OR o.customer_id = @viewer_id::uuid
       OR (o.status = 'OPEN' AND o.service_id = ANY(@offered::uuid[]))
       OR EXISTS (SELECT 1 FROM offers f WHERE f.order_id = o.id AND f.provider_id = @viewer_id::uuid)
       OR EXISTS (SELECT 1 FROM jobs j WHERE j.order_id = o.id AND j.provider_id = @viewer_id::uuid))
  AND (sqlc.narg(status)::order_status IS NULL OR o.status = sqlc.narg(status)::order_status)
  AND (sqlc.narg(service_id)::uuid IS NULL OR o.service_id = sqlc.narg(service_id)::uuid)
  AND (sqlc.narg(search)::text IS NULL
       OR (o.description || ' ' || o.address) ILIKE '%' || sqlc.narg(search)::text || '%');

-- name: ListOrders :many
-- The same filters as CountOrders; orderby created_at (the only key), id the tie-breaker,
-- keyset after the previous page's (created_at, id) (lib/http/cursor.py; fixup: sort).
-- fixup: sort o.created_at, keyset o.id
SELECT o.* FROM orders o
WHERE (@see_all::boolean
       OR o.customer_id = @viewer_id::uuid
       OR (o.status = 'OPEN' AND o.service_id = ANY(@offered::uuid[]))
       OR EXISTS (SELECT 1 FROM offers f WHERE f.order_id = o.id AND f.provider_id = @viewer_id::uuid)
       OR EXISTS (SELECT 1 FROM jobs j WHERE j.order_id = o.id AND j.provider_id = @viewer_id::uuid))
  AND (sqlc.narg(status)::order_status IS NULL OR o.status = sqlc.narg(status)::order_status)
  AND (sqlc.narg(service_id)::uuid IS NULL OR o.service_id = sqlc.narg(service_id)::uuid)
  AND (sqlc.narg(search)::text IS NULL
       OR (o.description || ' ' || o.address) ILIKE '%' || sqlc.narg(search)::text || '%')
LIMIT @row_limit OFFSET @row_offset;

-- name: UpdateOrder :one
-- PATCH: the owner, while OPEN, at the version of If-Match; 0 rows: the caller finds why.
UPDATE orders
SET description = coalesce(sqlc.narg(description), description),
    address = coalesce(sqlc.narg(address), address),
    time_start = coalesce(sqlc.narg(time_start), time_start),
    time_end = coalesce(sqlc.narg(time_end), time_end),
    version = version + 1,
    updated_at = now()
WHERE id = @id AND customer_id = @customer_id AND version = @version AND status = 'OPEN'
RETURNING *;

-- name: CancelOrder :one
UPDATE orders SET status = 'CANCELLED', version = version + 1, updated_at = now()
WHERE id = @id AND customer_id = @customer_id AND status = 'OPEN'
RETURNING *;

-- name: AssignOrder :one
-- Accept, step 1: locks the order row, so of concurrent accepts exactly one passes.
UPDATE orders SET status = 'ASSIGNED', version = version + 1, updated_at = now()
WHERE id = @id AND customer_id = @customer_id AND status = 'OPEN'
RETURNING *;

-- name: CompleteOrder :execrows
UPDATE orders SET status = 'COMPLETED', version = version + 1, updated_at = now()
WHERE id = @id AND status = 'ASSIGNED';

-- name: ReopenOrder :execrows
-- A cancelled job sends its order back to OPEN.
UPDATE orders SET status = 'OPEN', version = version + 1, updated_at = now()
WHERE id = @id AND status = 'ASSIGNED';

-- name: EraseCustomerOrders :exec
-- The erasure of a customer (ADR 0060, docs/operations.md "Data retention"): the orders
-- stay (their amounts are accounting records), the person's words and address go.
UPDATE orders
SET customer_name = NULL, description = '[erased]', address = '[erased]',
    version = version + 1, updated_at = now()
WHERE customer_id = @user_id;
