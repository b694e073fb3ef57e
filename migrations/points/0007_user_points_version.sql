-- 0007_user_points_version: every row a write changes in user_points bumps its stamp (0006)
-- in the writing transaction (MariaDB's triggers are per row). Not in sqlc.yaml's schema:
-- sqlc's MySQL parser refuses CREATE TRIGGER, and a trigger changes nothing a query reads.

CREATE TRIGGER user_points_version_insert AFTER INSERT ON user_points FOR EACH ROW
    UPDATE table_versions
       SET version = GREATEST(version + 1, FLOOR(UNIX_TIMESTAMP(NOW(6)) * 1000000))
     WHERE name = 'user_points';
CREATE TRIGGER user_points_version_update AFTER UPDATE ON user_points FOR EACH ROW
    UPDATE table_versions
       SET version = GREATEST(version + 1, FLOOR(UNIX_TIMESTAMP(NOW(6)) * 1000000))
     WHERE name = 'user_points';
CREATE TRIGGER user_points_version_delete AFTER DELETE ON user_points FOR EACH ROW
    UPDATE table_versions
       SET version = GREATEST(version + 1, FLOOR(UNIX_TIMESTAMP(NOW(6)) * 1000000))
     WHERE name = 'user_points';
