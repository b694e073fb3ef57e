-- Starter set; the order, offer and job queries come with the orders issue.

-- name: ListCurrencies :many
SELECT * FROM currencies ORDER BY code;

-- name: GetOrder :one
SELECT * FROM orders WHERE id = @id;

-- name: CreateOrder :one
INSERT INTO orders (customer_id, customer_name, service_id, description, address, time_start, time_end)
VALUES (@customer_id, sqlc.narg(customer_name), @service_id, @description, @address, @time_start, @time_end)
RETURNING *;
