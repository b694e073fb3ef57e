-- The audit trail (ADR 0057) of a MariaDB db with an audit_events table: each such
-- sql/<db>/sqlc.yaml lists this file.

-- name: InsertAuditEvent :exec
-- In the write's own transaction, before its commit; the time is the database's.
INSERT INTO audit_events (subject_id, subject_role, action, resource, resource_id, route,
                          request_id, before_fields, after_fields)
VALUES (sqlc.narg(subject_id), sqlc.narg(subject_role), sqlc.arg(action), sqlc.arg(resource),
        sqlc.narg(resource_id), sqlc.arg(route), sqlc.arg(request_id),
        sqlc.narg(before_fields), sqlc.narg(after_fields));
