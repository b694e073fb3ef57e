-- A person's rows for their data export (services/orders/export.py, ADR 0059): every row
-- that names them as customer or provider, oldest first, at most @row_limit of each (the
-- caller asks for one more than its bound to tell "exactly the bound" from "more").

-- name: ExportOrders :many
SELECT * FROM orders WHERE customer_id = @user_id
ORDER BY created_at, id LIMIT @row_limit;

-- name: ExportOffers :many
SELECT * FROM offers WHERE provider_id = @user_id
ORDER BY created_at, id LIMIT @row_limit;

-- name: ExportJobs :many
SELECT * FROM jobs WHERE customer_id = @user_id OR provider_id = @user_id
ORDER BY created_at, id LIMIT @row_limit;

-- name: ExportReviews :many
-- Through the person's jobs (indexed by customer and by provider; a review's parties are
-- its job's), not a scan of the reviews by customer.
SELECT r.* FROM reviews r
JOIN jobs j ON j.id = r.job_id
WHERE j.customer_id = @user_id OR j.provider_id = @user_id
ORDER BY r.created_at, r.id LIMIT @row_limit;
