-- name: EnqueueOutbox :execlastid
-- traceparent: the writing request's trace context (NULL when tracing is off).
INSERT INTO outbox (topic, aggregate_id, payload, idempotency_key, traceparent)
VALUES (@topic, @aggregate_id, @payload, @idempotency_key, sqlc.narg(traceparent))
RETURNING id;

-- name: MarkOutboxDelivered :exec
UPDATE outbox SET delivered_at = now(), last_error = NULL WHERE id = @id;

-- name: LeaseOutbox :many
-- Relay: claim due rows (SKIP LOCKED: replicas never claim the same row at once) and
-- lease them by moving available_at, so the delivery runs with no transaction open; a
-- relay that dies mid-delivery loses its lease and the row is delivered again (the
-- idempotency key makes that harmless downstream).
UPDATE outbox SET available_at = now() + make_interval(secs => @lease_seconds::float8),
                  attempts = attempts + 1
WHERE id IN (
    SELECT id FROM outbox
    WHERE delivered_at IS NULL AND available_at <= now()
    ORDER BY available_at, id
    LIMIT @batch_size
    FOR UPDATE SKIP LOCKED)
RETURNING *;

-- name: DeferOutbox :exec
UPDATE outbox
SET last_error = @last_error, available_at = now() + make_interval(secs => @retry_in_seconds::float8)
WHERE id = @id AND delivered_at IS NULL;

-- name: OutboxBacklog :one
-- outbox_pending and outbox_oldest_age_seconds.
SELECT count(*) AS pending,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_age_seconds
FROM outbox WHERE delivered_at IS NULL;
