-- 0006_user_statistics: undo exactly what 0006_user_statistics.sql does

DROP TRIGGER IF EXISTS users_statistics_truncate ON users;

DROP TRIGGER IF EXISTS users_statistics_delete ON users;

DROP TRIGGER IF EXISTS users_statistics_update ON users;

DROP TRIGGER IF EXISTS users_statistics_insert ON users;

DROP FUNCTION IF EXISTS user_statistics_truncate();

DROP FUNCTION IF EXISTS user_statistics_apply();

DROP TABLE IF EXISTS user_statistics;
