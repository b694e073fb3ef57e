-- 0005_statistics_indexes: where the users-list statistics summary (0006) recomputes a
-- group's min/max when a write removes the group's extreme value: one index scan per
-- extreme (min/max over the group's live rows), never a scan of the group. The group key
-- is (role, verified, department_id); coalesce makes a NULL department an equality key.
-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS users_statistics_age_idx;

CREATE INDEX CONCURRENTLY IF NOT EXISTS users_statistics_age_idx ON users
    (role, verified, (coalesce(department_id, '00000000-0000-0000-0000-000000000000'::uuid)), age)
    WHERE deleted_at IS NULL;

DROP INDEX CONCURRENTLY IF EXISTS users_statistics_salary_idx;

CREATE INDEX CONCURRENTLY IF NOT EXISTS users_statistics_salary_idx ON users
    (role, verified, (coalesce(department_id, '00000000-0000-0000-0000-000000000000'::uuid)), salary)
    WHERE deleted_at IS NULL;
