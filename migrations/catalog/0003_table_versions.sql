-- 0003_table_versions: a version stamp per table, for conditional reads (ETag, ADR 0019).
-- As departments' 0004: every statement that writes a listed table (a cascade too) bumps
-- that table's row in its own transaction (a statement-level trigger), never below the
-- wall clock in microseconds, so a database made again never repeats a stamp.
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
FROM unnest(ARRAY['category_types', 'categories', 'subcategories', 'services', 'provider_services']) AS t;

CREATE TRIGGER category_types_version AFTER INSERT OR UPDATE OR DELETE ON category_types
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER category_types_version_truncate AFTER TRUNCATE ON category_types
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();

CREATE TRIGGER categories_version AFTER INSERT OR UPDATE OR DELETE ON categories
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER categories_version_truncate AFTER TRUNCATE ON categories
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();

CREATE TRIGGER subcategories_version AFTER INSERT OR UPDATE OR DELETE ON subcategories
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER subcategories_version_truncate AFTER TRUNCATE ON subcategories
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();

CREATE TRIGGER services_version AFTER INSERT OR UPDATE OR DELETE ON services
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER services_version_truncate AFTER TRUNCATE ON services
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();

CREATE TRIGGER provider_services_version AFTER INSERT OR UPDATE OR DELETE ON provider_services
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER provider_services_version_truncate AFTER TRUNCATE ON provider_services
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
