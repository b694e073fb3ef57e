-- 0006_table_versions: undo exactly what 0006_table_versions.sql does
DROP TABLE table_versions;
