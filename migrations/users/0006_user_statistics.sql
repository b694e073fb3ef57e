-- 0006_user_statistics: the users list's statistics (count, min/max/avg age and salary over
-- the filtered set) kept by the writes themselves, per (role, department_id, verified)
-- group, so a list request reads a few summary rows instead of scanning the filtered users
-- (ADR 0023). Statement triggers, in the writing transaction: the delta of the statement's
-- live rows (deleted_at IS NULL) is applied to count and sums; min/max take the added
-- values, and a group's min/max is recomputed from users_statistics_*_idx (0005) only when
-- a removed value was the group's extreme. Exact under concurrent writes at READ COMMITTED:
-- the recompute is a later statement than the one that locked the group's summary row, so
-- it sees every committed write of that group, and an uncommitted one applies its own delta
-- after it (tests/integration/users/test_statistics_summary.py).

CREATE TABLE user_statistics (
    role            user_role      NOT NULL,
    department_id   uuid           NULL,
    verified        boolean        NOT NULL,
    total           bigint         NOT NULL DEFAULT 0,
    age_count       bigint         NOT NULL DEFAULT 0,
    age_sum         bigint         NOT NULL DEFAULT 0,
    age_min         integer        NULL,
    age_max         integer        NULL,
    salary_count    bigint         NOT NULL DEFAULT 0,
    -- scale 2 as users.salary: the average divides the same numeric as avg(salary) does
    salary_sum      numeric(38,2)  NOT NULL DEFAULT 0,
    salary_min      numeric(12,2)  NULL,
    salary_max      numeric(12,2)  NULL,
    -- no CHECK on the counts: INSERT ... ON CONFLICT checks the proposed row (a negative
    -- delta) before it finds the conflict; the summary-equals-scan test guards them instead
    CONSTRAINT user_statistics_group_key UNIQUE NULLS NOT DISTINCT (role, department_id, verified)
);

-- The statement's change as rows (sign, role, department_id, verified, age, salary): +1 a
-- live row added, -1 one removed. An UPDATE counts only what changed (old EXCEPT ALL new
-- and the reverse), so a rename touches no summary row.
CREATE FUNCTION user_statistics_apply() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    live_new text := 'SELECT role, department_id, verified, age, salary FROM new_rows WHERE deleted_at IS NULL';
    live_old text := 'SELECT role, department_id, verified, age, salary FROM old_rows WHERE deleted_at IS NULL';
    changes text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        changes := format('SELECT 1 AS sign, * FROM (%s) a', live_new);
    ELSIF TG_OP = 'DELETE' THEN
        changes := format('SELECT -1 AS sign, * FROM (%s) r', live_old);
    ELSE
        changes := format(
            'SELECT 1 AS sign, * FROM (%1$s EXCEPT ALL %2$s) a '
            'UNION ALL SELECT -1, * FROM (%2$s EXCEPT ALL %1$s) r', live_new, live_old);
    END IF;
    -- count and sums; min/max of the added values (groups locked in key order)
    EXECUTE format($sql$
        INSERT INTO user_statistics AS s (role, department_id, verified, total, age_count,
            age_sum, age_min, age_max, salary_count, salary_sum, salary_min, salary_max)
        SELECT role, department_id, verified, sum(sign),
               coalesce(sum(sign) FILTER (WHERE age IS NOT NULL), 0),
               coalesce(sum(sign * age), 0),
               min(age) FILTER (WHERE sign = 1), max(age) FILTER (WHERE sign = 1),
               coalesce(sum(sign) FILTER (WHERE salary IS NOT NULL), 0),
               coalesce(sum(sign * salary), 0),
               min(salary) FILTER (WHERE sign = 1), max(salary) FILTER (WHERE sign = 1)
        FROM (%s) c
        GROUP BY role, department_id, verified
        ORDER BY role, department_id, verified
        ON CONFLICT (role, department_id, verified) DO UPDATE SET
            total = s.total + excluded.total,
            age_count = s.age_count + excluded.age_count,
            age_sum = s.age_sum + excluded.age_sum,
            age_min = least(s.age_min, excluded.age_min),
            age_max = greatest(s.age_max, excluded.age_max),
            salary_count = s.salary_count + excluded.salary_count,
            salary_sum = s.salary_sum + excluded.salary_sum,
            salary_min = least(s.salary_min, excluded.salary_min),
            salary_max = greatest(s.salary_max, excluded.salary_max)
    $sql$, changes);
    -- a new statement (a new snapshot): the groups whose extreme was removed, from the index
    EXECUTE format($sql$
        UPDATE user_statistics s SET
            age_min = CASE WHEN r.age_min <= s.age_min THEN (
                SELECT min(u.age) FROM users u WHERE u.deleted_at IS NULL AND u.role = s.role
                AND u.verified = s.verified AND coalesce(u.department_id,
                    '00000000-0000-0000-0000-000000000000'::uuid) = coalesce(s.department_id,
                    '00000000-0000-0000-0000-000000000000'::uuid)) ELSE s.age_min END,
            age_max = CASE WHEN r.age_max >= s.age_max THEN (
                SELECT max(u.age) FROM users u WHERE u.deleted_at IS NULL AND u.role = s.role
                AND u.verified = s.verified AND coalesce(u.department_id,
                    '00000000-0000-0000-0000-000000000000'::uuid) = coalesce(s.department_id,
                    '00000000-0000-0000-0000-000000000000'::uuid)) ELSE s.age_max END,
            salary_min = CASE WHEN r.salary_min <= s.salary_min THEN (
                SELECT min(u.salary) FROM users u WHERE u.deleted_at IS NULL AND u.role = s.role
                AND u.verified = s.verified AND coalesce(u.department_id,
                    '00000000-0000-0000-0000-000000000000'::uuid) = coalesce(s.department_id,
                    '00000000-0000-0000-0000-000000000000'::uuid)) ELSE s.salary_min END,
            salary_max = CASE WHEN r.salary_max >= s.salary_max THEN (
                SELECT max(u.salary) FROM users u WHERE u.deleted_at IS NULL AND u.role = s.role
                AND u.verified = s.verified AND coalesce(u.department_id,
                    '00000000-0000-0000-0000-000000000000'::uuid) = coalesce(s.department_id,
                    '00000000-0000-0000-0000-000000000000'::uuid)) ELSE s.salary_max END
        FROM (SELECT role, department_id, verified, min(age) AS age_min, max(age) AS age_max,
                     min(salary) AS salary_min, max(salary) AS salary_max
              FROM (%s) c WHERE sign = -1
              GROUP BY role, department_id, verified) r
        WHERE s.role = r.role AND s.verified = r.verified
          AND s.department_id IS NOT DISTINCT FROM r.department_id
          AND (r.age_min <= s.age_min OR r.age_max >= s.age_max
               OR r.salary_min <= s.salary_min OR r.salary_max >= s.salary_max)
    $sql$, changes);
    RETURN NULL;
END
$fn$;

CREATE FUNCTION user_statistics_truncate() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM user_statistics;
    RETURN NULL;
END
$fn$;

-- The triggers first: from here every write to users waits for this transaction, so the
-- backfill below sees every committed row and no write slips between the two.
CREATE TRIGGER users_statistics_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION user_statistics_apply();

CREATE TRIGGER users_statistics_update AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION user_statistics_apply();

CREATE TRIGGER users_statistics_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION user_statistics_apply();

CREATE TRIGGER users_statistics_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION user_statistics_truncate();

INSERT INTO user_statistics (role, department_id, verified, total, age_count, age_sum,
    age_min, age_max, salary_count, salary_sum, salary_min, salary_max)
SELECT role, department_id, verified, count(*), count(age), coalesce(sum(age), 0), min(age),
       max(age), count(salary), coalesce(sum(salary), 0), min(salary), max(salary)
FROM users
WHERE deleted_at IS NULL
GROUP BY role, department_id, verified;
