-- Reviews: the job's customer, once, after COMPLETED.

-- name: CreateReview :one
INSERT INTO reviews (job_id, customer_id, provider_id, rating, comment)
SELECT j.id, j.customer_id, j.provider_id, @rating, sqlc.narg(comment)
FROM jobs j
WHERE j.id = @job_id AND j.customer_id = @customer_id AND j.status = 'COMPLETED'
RETURNING *;

-- name: ListProviderReviews :many
-- Keyset after the previous page's (created_at, id) (lib/http/cursor.py; fixup: sort).
-- fixup: sort created_at, keyset id
SELECT * FROM reviews
WHERE provider_id = @provider_id
LIMIT @row_limit OFFSET @row_offset;

-- name: ProviderRating :one
-- count and the average rounded half-up to 2 places (NULL without reviews).
SELECT count(*) AS total, round(avg(rating), 2) AS avg_rating
FROM reviews WHERE provider_id = @provider_id;

-- name: EraseCustomerReviews :exec
-- The erasure of a customer (ADR 0060): the rating stays (the provider's average), the
-- comment the person wrote goes.
UPDATE reviews SET comment = NULL WHERE customer_id = @user_id AND comment IS NOT NULL;
