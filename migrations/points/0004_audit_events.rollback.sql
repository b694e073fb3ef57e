-- 0004_audit_events: undo exactly what 0004_audit_events.sql does
DROP TABLE audit_events;
