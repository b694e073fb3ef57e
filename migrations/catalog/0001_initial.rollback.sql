-- 0001_initial: undo exactly what 0001_initial.sql does.

DROP TABLE IF EXISTS provider_services;
DROP TABLE IF EXISTS services;
DROP TABLE IF EXISTS subcategories;
DROP TABLE IF EXISTS categories;
DROP TABLE IF EXISTS category_types;
