-- 0005_statistics_indexes: undo exactly what 0005_statistics_indexes.sql does
-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS users_statistics_salary_idx;

DROP INDEX CONCURRENTLY IF EXISTS users_statistics_age_idx;
