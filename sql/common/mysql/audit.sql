-- The audit trail (lib/http/audit.py, ADR 0057) of a MariaDB db with an audit_events table:
-- each such sql/<db>/sqlc.yaml lists this file. The same queries as sql/common/audit.sql
-- (`until` quoted: MariaDB's parser reserves it; sqlc names LIMIT ? and OFFSET ? itself).

-- name: InsertAuditEvent :exec
-- In the write's own transaction, before its commit; the time is the database's.
INSERT INTO audit_events (subject_id, subject_role, action, resource, resource_id, route,
                          request_id, before_fields, after_fields)
VALUES (sqlc.narg(subject_id), sqlc.narg(subject_role), sqlc.arg(action), sqlc.arg(resource),
        sqlc.narg(resource_id), sqlc.arg(route), sqlc.arg(request_id),
        sqlc.narg(before_fields), sqlc.narg(after_fields));

-- name: CountAuditEvents :one
SELECT count(*) AS total FROM audit_events
WHERE (sqlc.narg(subject_id) IS NULL OR subject_id = sqlc.narg(subject_id))
  AND (sqlc.narg(resource) IS NULL OR resource = sqlc.narg(resource))
  AND (sqlc.narg(request_id) IS NULL OR request_id = sqlc.narg(request_id))
  AND (sqlc.narg(since) IS NULL OR occurred_at >= sqlc.narg(since))
  AND (sqlc.narg('until') IS NULL OR occurred_at < sqlc.narg('until'));

-- name: ListAuditEvents :many
-- Keyset after the previous page's (occurred_at, id) (lib/http/cursor.py; fixup: sort).
-- fixup: sort occurred_at, keyset id
SELECT id, occurred_at, subject_id, subject_role, action, resource, resource_id, route,
       request_id, before_fields, after_fields
FROM audit_events
WHERE (sqlc.narg(subject_id) IS NULL OR subject_id = sqlc.narg(subject_id))
  AND (sqlc.narg(resource) IS NULL OR resource = sqlc.narg(resource))
  AND (sqlc.narg(request_id) IS NULL OR request_id = sqlc.narg(request_id))
  AND (sqlc.narg(since) IS NULL OR occurred_at >= sqlc.narg(since))
  AND (sqlc.narg('until') IS NULL OR occurred_at < sqlc.narg('until'))
LIMIT ? OFFSET ?;
