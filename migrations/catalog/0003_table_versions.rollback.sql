-- 0003_table_versions: undo exactly what 0003_table_versions.sql does
DROP TRIGGER category_types_version_truncate ON category_types;
DROP TRIGGER category_types_version ON category_types;
DROP TRIGGER categories_version_truncate ON categories;
DROP TRIGGER categories_version ON categories;
DROP TRIGGER subcategories_version_truncate ON subcategories;
DROP TRIGGER subcategories_version ON subcategories;
DROP TRIGGER services_version_truncate ON services;
DROP TRIGGER services_version ON services;
DROP TRIGGER provider_services_version_truncate ON provider_services;
DROP TRIGGER provider_services_version ON provider_services;
DROP TABLE table_versions;
DROP FUNCTION bump_table_version();
