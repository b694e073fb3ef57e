-- 0004_outbox_traceparent: undo exactly what 0004_outbox_traceparent.sql does

ALTER TABLE outbox DROP COLUMN IF EXISTS traceparent;
