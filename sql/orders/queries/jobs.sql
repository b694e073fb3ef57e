-- Jobs: PENDING -> IN_PROGRESS -> COMPLETED; PENDING | IN_PROGRESS -> CANCELLED.
-- A job's price and currency are its accepted offer's.

-- name: CreateJob :one
-- Accept, step 4.
INSERT INTO jobs (order_id, offer_id, customer_id, provider_id)
VALUES (@order_id, @offer_id, @customer_id, @provider_id)
RETURNING id;

-- name: GetJob :one
SELECT j.id, j.order_id, j.offer_id, j.customer_id, j.provider_id, o.price, o.currency,
       j.status, j.started_at, j.completed_at, j.created_at
FROM jobs j JOIN offers o ON o.id = j.offer_id
WHERE j.id = @id;

-- name: CountJobs :one
SELECT count(*) FROM jobs j
WHERE (@see_all::boolean OR j.customer_id = @viewer_id::uuid OR j.provider_id = @viewer_id::uuid)
  AND (sqlc.narg(status)::job_status IS NULL OR j.status = sqlc.narg(status)::job_status);

-- name: ListJobs :many
-- Keyset after the previous page's (created_at, id) (lib/http/cursor.py; fixup: sort).
-- fixup: sort j.created_at, keyset j.id
SELECT j.id, j.order_id, j.offer_id, j.customer_id, j.provider_id, o.price, o.currency,
       j.status, j.started_at, j.completed_at, j.created_at
FROM jobs j JOIN offers o ON o.id = j.offer_id
WHERE (@see_all::boolean OR j.customer_id = @viewer_id::uuid OR j.provider_id = @viewer_id::uuid)
  AND (sqlc.narg(status)::job_status IS NULL OR j.status = sqlc.narg(status)::job_status)
LIMIT @row_limit OFFSET @row_offset;

-- name: StartJob :one
UPDATE jobs SET status = 'IN_PROGRESS', started_at = now(), updated_at = now()
WHERE id = @id AND provider_id = @provider_id AND status = 'PENDING'
RETURNING order_id;

-- name: CompleteJob :one
UPDATE jobs SET status = 'COMPLETED', completed_at = now(), updated_at = now()
WHERE id = @id AND provider_id = @provider_id AND status = 'IN_PROGRESS'
RETURNING order_id;

-- name: CancelJob :one
UPDATE jobs SET status = 'CANCELLED', updated_at = now()
WHERE id = @id AND (customer_id = @user_id OR provider_id = @user_id)
  AND status IN ('PENDING', 'IN_PROGRESS')
RETURNING order_id;
