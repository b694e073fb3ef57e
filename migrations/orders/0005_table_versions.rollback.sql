-- 0005_table_versions: undo exactly what 0005_table_versions.sql does
DROP TRIGGER currencies_version_truncate ON currencies;
DROP TRIGGER currencies_version_delete ON currencies;
DROP TRIGGER currencies_version_update ON currencies;
DROP TRIGGER currencies_version_insert ON currencies;
DROP TRIGGER reviews_version_truncate ON reviews;
DROP TRIGGER reviews_version_delete ON reviews;
DROP TRIGGER reviews_version_update ON reviews;
DROP TRIGGER reviews_version_insert ON reviews;
DROP TABLE table_versions;
DROP FUNCTION bump_table_version();
