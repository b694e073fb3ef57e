-- 0005_audit_events_append_only: audit_events (0004) refuses UPDATE and DELETE (ADR 0057).
-- MariaDB has no TRUNCATE trigger: TRUNCATE needs the DROP privilege. A trigger, not a
-- REVOKE: the service connects as root, whom no grant binds. Online-safe: the running
-- release never writes the table.

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit_events is append-only: UPDATE refused';

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit_events is append-only: DELETE refused';
