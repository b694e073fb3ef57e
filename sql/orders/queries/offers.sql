-- Offers: PENDING -> ACCEPTED | REJECTED | WITHDRAWN, every move a conditional UPDATE.

-- name: CreateOffer :one
-- Only on an OPEN order: FOR SHARE waits for a concurrent accept or cancel and re-reads
-- the status after it, so no PENDING offer is left on an ASSIGNED or CANCELLED order.
INSERT INTO offers (order_id, provider_id, price, currency, book_time, message)
SELECT o.id, @provider_id, @price, @currency, @book_time, sqlc.narg(message)
FROM orders o
WHERE o.id = @order_id AND o.status = 'OPEN'
FOR SHARE
RETURNING *;

-- name: GetOffer :one
SELECT * FROM offers WHERE id = @id AND order_id = @order_id;

-- name: ListOffers :many
-- The owner (or ADMIN) sees all (@provider_id NULL), a provider only theirs. Each direction
-- is its own statement (fixup: sort): a desc page is taken newest first, never a reversed
-- ascending one.
-- fixup: sort created_at, then id
SELECT * FROM offers
WHERE order_id = @order_id
  AND (sqlc.narg(provider_id)::uuid IS NULL OR provider_id = sqlc.narg(provider_id)::uuid)
LIMIT @row_limit OFFSET @row_offset;

-- name: CountOffers :one
SELECT count(*) FROM offers
WHERE order_id = @order_id
  AND (sqlc.narg(provider_id)::uuid IS NULL OR provider_id = sqlc.narg(provider_id)::uuid);

-- name: WithdrawOffer :one
UPDATE offers SET status = 'WITHDRAWN', updated_at = now()
WHERE id = @id AND order_id = @order_id AND provider_id = @provider_id AND status = 'PENDING'
RETURNING *;

-- name: AcceptOffer :one
-- Accept, step 2 (after AssignOrder in the same transaction).
UPDATE offers SET status = 'ACCEPTED', updated_at = now()
WHERE id = @id AND order_id = @order_id AND status = 'PENDING'
RETURNING *;

-- name: RejectPendingOffers :execrows
-- Accept, step 3 (the others), and the cancel of an OPEN order (all).
UPDATE offers SET status = 'REJECTED', updated_at = now()
WHERE order_id = @order_id AND status = 'PENDING';

-- name: EraseProviderOffers :exec
-- The erasure of a provider (ADR 0060): the offers and their amounts stay, the message goes.
UPDATE offers SET message = NULL, updated_at = now()
WHERE provider_id = @user_id AND message IS NOT NULL;
