-- 0005_table_versions: a version stamp per table, for conditional reads (ETag, ADR 0019).
-- As departments' 0004: every statement that changes a row of a listed table bumps its row
-- in its own transaction (a statement-level trigger), never below the wall clock in
-- microseconds, so a database made again never repeats a stamp. Only the tables the
-- public lists read (currencies, reviews): the others are never answered with a 304.
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
SELECT t, (extract(epoch FROM clock_timestamp()) * 1e6)::bigint
FROM unnest(ARRAY['currencies', 'reviews']) AS t;

CREATE TRIGGER currencies_version_insert AFTER INSERT ON currencies
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER currencies_version_update AFTER UPDATE ON currencies
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER currencies_version_delete AFTER DELETE ON currencies
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER currencies_version_truncate AFTER TRUNCATE ON currencies
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();

CREATE TRIGGER reviews_version_insert AFTER INSERT ON reviews
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER reviews_version_update AFTER UPDATE ON reviews
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER reviews_version_delete AFTER DELETE ON reviews
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER reviews_version_truncate AFTER TRUNCATE ON reviews
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
