-- 0005_table_row_counts: the departments list's total kept beside its version stamp.
--
-- The list answered `count(*)` on every request: a scan of the whole table (0.1 ms at
-- 10^3 rows, linear beyond), PostgreSQL CPU every page paid. The statement-level trigger
-- of 0004, which already updates this table's row in the writing transaction, now also
-- adds the rows each INSERT (or COPY) made and subtracts those each DELETE removed
-- (TRUNCATE: 0). Writers of one table already serialize on that row until they commit
-- (ADR 0019), so the count is exact and commits with the data, and a reader's snapshot
-- sees both or neither. NULL: a table whose rows are not counted (the list then counts).
--
-- Online-safe (docs/migrations.md, ADR 0018): a nullable column is a catalog change; the
-- running release reads only `version`. The starting count must not miss a write that
-- commits while this runs, so writes to departments wait (SHARE ROW EXCLUSIVE: reads go
-- on) for this transaction: one count of the table, under the runner's lock_timeout.
ALTER TABLE table_versions ADD COLUMN row_count bigint NULL;

LOCK TABLE departments IN SHARE ROW EXCLUSIVE MODE;

CREATE OR REPLACE FUNCTION bump_table_version() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed_rows bigint := 0;
BEGIN
    -- a statement that changed no row (a refused UPDATE ... WHERE owner = ...) wrote
    -- nothing: the stamp stays, and so do the clients' copies
    IF TG_OP <> 'TRUNCATE' THEN
        SELECT count(*) INTO changed_rows FROM changed;
        IF changed_rows = 0 THEN
            RETURN NULL;
        END IF;
    END IF;
    UPDATE table_versions
       SET version = greatest(version + 1, (extract(epoch FROM clock_timestamp()) * 1e6)::bigint),
           row_count = CASE TG_OP
               WHEN 'INSERT' THEN row_count + changed_rows
               WHEN 'DELETE' THEN row_count - changed_rows
               WHEN 'TRUNCATE' THEN CASE WHEN row_count IS NULL THEN NULL ELSE 0 END
               ELSE row_count
           END
     WHERE name = TG_TABLE_NAME;
    RETURN NULL;
END $$;

UPDATE table_versions SET row_count = (SELECT count(*) FROM departments)
 WHERE name = 'departments';
