-- 0013_table_versions: a version stamp for users, for the users list's conditional reads
-- (ETag and page cache, ADR 0019, 0056). As departments' 0004: every statement that
-- changes a row of users bumps the stamp in its own transaction (a statement-level
-- trigger), never below the wall clock in microseconds, so a database made again never
-- repeats a stamp. user_statistics_summary moves only with users (its triggers): one
-- stamp covers both.
CREATE TABLE table_versions (
    name    text PRIMARY KEY,
    version bigint NOT NULL
);

CREATE FUNCTION bump_table_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- a statement that changed no row wrote nothing: the stamp stays, and so do the
    -- clients' copies
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
VALUES ('users', (extract(epoch FROM clock_timestamp()) * 1e6)::bigint);

CREATE TRIGGER users_version_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER users_version_update AFTER UPDATE ON users
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER users_version_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
CREATE TRIGGER users_version_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version();
