-- Reviews: the job's customer, once, after COMPLETED.

-- name: CreateReview :one
INSERT INTO reviews (job_id, customer_id, provider_id, rating, comment)
SELECT j.id, j.customer_id, j.provider_id, @rating, sqlc.narg(comment)
FROM jobs j
WHERE j.id = @job_id AND j.customer_id = @customer_id AND j.status = 'COMPLETED'
RETURNING *;

-- name: ListProviderReviews :many
SELECT * FROM reviews
WHERE provider_id = @provider_id
  AND (sqlc.narg(after_id)::uuid IS NULL  -- keyset (lib/http/cursor.py)
       OR (@descending::boolean = false
           AND (created_at, id) > (sqlc.narg(after_time)::timestamptz, sqlc.narg(after_id)::uuid))
       OR (@descending::boolean
           AND (created_at, id) < (sqlc.narg(after_time)::timestamptz, sqlc.narg(after_id)::uuid)))
ORDER BY
  CASE WHEN @descending::boolean = false THEN created_at END ASC,
  CASE WHEN @descending::boolean THEN created_at END DESC,
  CASE WHEN @descending::boolean = false THEN id END ASC,
  CASE WHEN @descending::boolean THEN id END DESC
LIMIT @row_limit OFFSET @row_offset;

-- name: ProviderRating :one
-- count and the average rounded half-up to 2 places (NULL without reviews).
SELECT count(*) AS total, round(avg(rating), 2) AS avg_rating
FROM reviews WHERE provider_id = @provider_id;
