-- 0008_archived_departments_index: undo exactly what 0008_archived_departments_index.sql does
-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS departments_archived_idx;
