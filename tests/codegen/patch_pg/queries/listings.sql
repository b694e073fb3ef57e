-- name: CreateListing :one
INSERT INTO listings (title, price, note, discount)
VALUES (@title, @price, sqlc.narg(note), sqlc.narg(discount))
RETURNING *;

-- name: GetListing :one
SELECT * FROM listings WHERE id = @id;

-- name: UpdateListing :one
-- PATCH: a required column keeps its value on NULL (absent); a nullable one takes the
-- value, NULL included, only when its set_ flag says the body had it.
UPDATE listings
SET title = coalesce(sqlc.narg(title), title),
    price = coalesce(sqlc.narg(price), price),
    note = CASE WHEN sqlc.arg(set_note)::bool THEN sqlc.narg(note) ELSE note END,
    discount = CASE WHEN sqlc.arg(set_discount)::bool THEN sqlc.narg(discount) ELSE discount END,
    version = version + 1
WHERE id = @id
RETURNING *;
