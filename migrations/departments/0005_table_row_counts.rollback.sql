-- 0005_table_row_counts: undo exactly what 0005_table_row_counts.sql does
CREATE OR REPLACE FUNCTION bump_table_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- a statement that changed no row (a refused UPDATE ... WHERE owner = ...) wrote
    -- nothing: the stamp stays, and so do the clients' copies
    IF TG_OP <> 'TRUNCATE' THEN
        IF NOT EXISTS (SELECT 1 FROM changed) THEN
            RETURN NULL;
        END IF;
    END IF;
    UPDATE table_versions
       SET version = greatest(version + 1, (extract(epoch FROM clock_timestamp()) * 1e6)::bigint)
     WHERE name = TG_TABLE_NAME;
    RETURN NULL;
END $$;

ALTER TABLE table_versions DROP COLUMN row_count;
