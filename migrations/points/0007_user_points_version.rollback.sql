-- 0007_user_points_version: undo exactly what 0007_user_points_version.sql does
DROP TRIGGER user_points_version_delete;
DROP TRIGGER user_points_version_update;
DROP TRIGGER user_points_version_insert;
