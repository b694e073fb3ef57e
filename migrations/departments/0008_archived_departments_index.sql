-- 0008_archived_departments_index: the archived departments (0007), on an index of their
-- own: the default list's total is the count the writes keep (0005) less this index's
-- entries, a read as small as the archive, never a scan of the table.
-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS departments_archived_idx;

CREATE INDEX CONCURRENTLY IF NOT EXISTS departments_archived_idx ON departments (id)
    WHERE archived_at IS NOT NULL;
