-- 0003_table_versions: a version stamp per table, for conditional reads (ETag, ADR 0019).
-- As departments' 0004: every statement that changes a row of a listed table (a cascade too) bumps
-- that table's row in its own transaction (a statement-level trigger), never below the
-- wall clock in microseconds, so a database made again never repeats a stamp.
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
FROM unnest(ARRAY['category_types', 'categories', 'subcategories', 'services', 'provider_services']) AS t;

CREATE TRIGGER category_types_version_insert AFTER INSERT ON category_types
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER category_types_version_update AFTER UPDATE ON category_types
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER category_types_version_delete AFTER DELETE ON category_types
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER category_types_version_truncate AFTER TRUNCATE ON category_types
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();

CREATE TRIGGER categories_version_insert AFTER INSERT ON categories
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER categories_version_update AFTER UPDATE ON categories
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER categories_version_delete AFTER DELETE ON categories
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER categories_version_truncate AFTER TRUNCATE ON categories
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();

CREATE TRIGGER subcategories_version_insert AFTER INSERT ON subcategories
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER subcategories_version_update AFTER UPDATE ON subcategories
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER subcategories_version_delete AFTER DELETE ON subcategories
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER subcategories_version_truncate AFTER TRUNCATE ON subcategories
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();

CREATE TRIGGER services_version_insert AFTER INSERT ON services
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER services_version_update AFTER UPDATE ON services
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER services_version_delete AFTER DELETE ON services
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER services_version_truncate AFTER TRUNCATE ON services
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();

CREATE TRIGGER provider_services_version_insert AFTER INSERT ON provider_services
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER provider_services_version_update AFTER UPDATE ON provider_services
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER provider_services_version_delete AFTER DELETE ON provider_services
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER provider_services_version_truncate AFTER TRUNCATE ON provider_services
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
