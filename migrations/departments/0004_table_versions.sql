-- 0004_table_versions: a version stamp per table, for conditional reads (ETag, ADR 0019).
-- Every statement that changes a row of a listed table bumps that table's row here in its own
-- transaction (a statement-level trigger: no code path can forget it), so the stamp
-- commits with the data and every replica reads it from the database. A new version is
-- at least the wall clock in microseconds: a database restored from a backup or made
-- again never repeats a stamp a client saw before.
CREATE TABLE table_versions (
    name    text PRIMARY KEY,
    version bigint NOT NULL
);

CREATE FUNCTION bump_table_version() RETURNS trigger LANGUAGE plpgsql AS $$
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

INSERT INTO table_versions (name, version)
VALUES ('departments', (extract(epoch FROM clock_timestamp()) * 1e6)::bigint);

CREATE TRIGGER departments_version_insert AFTER INSERT ON departments
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER departments_version_update AFTER UPDATE ON departments
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER departments_version_delete AFTER DELETE ON departments
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER departments_version_truncate AFTER TRUNCATE ON departments
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
