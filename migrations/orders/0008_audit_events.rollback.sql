-- 0008_audit_events: undo exactly what 0008_audit_events.sql does
DROP TRIGGER audit_events_append_only ON audit_events;
DROP FUNCTION audit_events_append_only();
DROP TABLE audit_events;
