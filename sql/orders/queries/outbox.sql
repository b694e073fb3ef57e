-- name: EnqueueOutbox :execlastid
INSERT INTO outbox (topic, aggregate_id, payload, idempotency_key)
VALUES (@topic, @aggregate_id, @payload, @idempotency_key)
RETURNING id;

-- name: ClaimOutbox :many
-- Relay: due rows, locked so that replicas never deliver the same row at once.
SELECT * FROM outbox
WHERE delivered_at IS NULL AND available_at <= now()
ORDER BY available_at, id
LIMIT @batch_size
FOR UPDATE SKIP LOCKED;

-- name: MarkOutboxDelivered :exec
UPDATE outbox SET delivered_at = now(), last_error = NULL WHERE id = @id;

-- name: RetryOutboxLater :exec
UPDATE outbox
SET attempts = attempts + 1, last_error = @last_error, available_at = now() + @delay::interval
WHERE id = @id;

-- name: CountPendingOutbox :one
SELECT count(*) FROM outbox WHERE delivered_at IS NULL;
