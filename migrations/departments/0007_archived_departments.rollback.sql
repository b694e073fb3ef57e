-- 0007_archived_departments: undo exactly what 0007_archived_departments.sql does
ALTER TABLE departments DROP COLUMN archived_at;
