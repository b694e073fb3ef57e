-- 0005_table_versions: a version stamp per table, for conditional reads (ETag, ADR 0019).
-- As departments' 0004: every statement that writes a listed table bumps that table's row
-- in its own transaction (a statement-level trigger), never below the wall clock in
-- microseconds, so a database made again never repeats a stamp. Only the tables the
-- public lists read (currencies, reviews): the others are never answered with a 304.
CREATE TABLE table_versions (
    name    text PRIMARY KEY,
    version bigint NOT NULL
);

CREATE FUNCTION bump_table_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE table_versions
       SET version = greatest(version + 1, (extract(epoch FROM clock_timestamp()) * 1e6)::bigint)
     WHERE name = TG_TABLE_NAME;
    RETURN NULL;
END $$;

INSERT INTO table_versions (name, version)
SELECT t, (extract(epoch FROM clock_timestamp()) * 1e6)::bigint
FROM unnest(ARRAY['currencies', 'reviews']) AS t;

CREATE TRIGGER currencies_version AFTER INSERT OR UPDATE OR DELETE ON currencies
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER currencies_version_truncate AFTER TRUNCATE ON currencies
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();

CREATE TRIGGER reviews_version AFTER INSERT OR UPDATE OR DELETE ON reviews
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER reviews_version_truncate AFTER TRUNCATE ON reviews
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
