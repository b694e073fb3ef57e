-- The audit trail (lib/http/audit.py, ADR 0057), shared by every PostgreSQL db with an
-- audit_events table: each sql/<db>/sqlc.yaml lists this file.

-- name: InsertAuditEvent :exec
-- In the write's own transaction, before its commit; the time is the database's.
INSERT INTO audit_events (subject_id, subject_role, action, resource, resource_id, route,
                          request_id, before_fields, after_fields)
VALUES (sqlc.narg(subject_id)::uuid, sqlc.narg(subject_role), @action, @resource,
        sqlc.narg(resource_id), @route, @request_id, sqlc.narg(before_fields)::jsonb,
        sqlc.narg(after_fields)::jsonb);

-- name: CountAuditEvents :one
SELECT count(*) AS total FROM audit_events
WHERE (sqlc.narg(subject_id)::uuid IS NULL OR subject_id = sqlc.narg(subject_id)::uuid)
  AND (sqlc.narg(resource)::text IS NULL OR resource = sqlc.narg(resource)::text)
  AND (sqlc.narg(request_id)::text IS NULL OR request_id = sqlc.narg(request_id)::text)
  AND (sqlc.narg(since)::timestamptz IS NULL OR occurred_at >= sqlc.narg(since)::timestamptz)
  AND (sqlc.narg(until)::timestamptz IS NULL OR occurred_at < sqlc.narg(until)::timestamptz);

-- name: ListAuditEvents :many
-- Keyset after the previous page's (occurred_at, id) (lib/http/cursor.py; fixup: sort).
-- fixup: sort occurred_at, keyset id
SELECT id, occurred_at, subject_id, subject_role, action, resource, resource_id, route,
       request_id, before_fields, after_fields
FROM audit_events
WHERE (sqlc.narg(subject_id)::uuid IS NULL OR subject_id = sqlc.narg(subject_id)::uuid)
  AND (sqlc.narg(resource)::text IS NULL OR resource = sqlc.narg(resource)::text)
  AND (sqlc.narg(request_id)::text IS NULL OR request_id = sqlc.narg(request_id)::text)
  AND (sqlc.narg(since)::timestamptz IS NULL OR occurred_at >= sqlc.narg(since)::timestamptz)
  AND (sqlc.narg(until)::timestamptz IS NULL OR occurred_at < sqlc.narg(until)::timestamptz)
LIMIT @row_limit OFFSET @row_offset;
