-- 0013_table_versions: undo exactly what 0013_table_versions.sql does
DROP TRIGGER users_version_truncate ON users;
DROP TRIGGER users_version_delete ON users;
DROP TRIGGER users_version_update ON users;
DROP TRIGGER users_version_insert ON users;
DROP FUNCTION bump_table_version();
DROP TABLE table_versions;
