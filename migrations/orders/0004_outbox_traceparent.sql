-- 0004_outbox_traceparent: the W3C trace context of the request that wrote an outbox row
-- (lib/tracing.py), so the relay's delivery span links to it; NULL when tracing was off.

ALTER TABLE outbox ADD COLUMN traceparent text NULL;
