-- 0006_jobs_keyset: undo exactly what 0006_jobs_keyset.sql does
-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS jobs_created_at_id_idx;
