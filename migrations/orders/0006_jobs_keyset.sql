-- 0006_jobs_keyset: an ADMIN's GET /v1/jobs (every job, created_at order) pages by keyset
-- (`?cursor=`, lib/http/cursor.py, ADR 0023): `(created_at, id) > ($1, $2)` needs this index
-- to read the next page only; the customer's and provider's lists have theirs (0001).
-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS jobs_created_at_id_idx;

CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_created_at_id_idx ON jobs (created_at, id);
