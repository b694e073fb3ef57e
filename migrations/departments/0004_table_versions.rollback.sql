-- 0004_table_versions: undo exactly what 0004_table_versions.sql does
DROP TRIGGER departments_version_truncate ON departments;
DROP TRIGGER departments_version_delete ON departments;
DROP TRIGGER departments_version_update ON departments;
DROP TRIGGER departments_version_insert ON departments;
DROP TABLE table_versions;
DROP FUNCTION bump_table_version();
