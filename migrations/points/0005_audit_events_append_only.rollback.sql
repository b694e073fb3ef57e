-- 0005_audit_events_append_only: undo exactly what 0005_audit_events_append_only.sql does
DROP TRIGGER audit_events_no_delete;
DROP TRIGGER audit_events_no_update;
