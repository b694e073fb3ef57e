-- 0006_archived_entries: undo exactly what 0006_archived_entries.sql does
ALTER TABLE services DROP COLUMN archived_at;
ALTER TABLE subcategories DROP COLUMN archived_at;
ALTER TABLE categories DROP COLUMN archived_at;
ALTER TABLE category_types DROP COLUMN archived_at;
