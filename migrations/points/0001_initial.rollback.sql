-- 0001_initial: undo exactly what 0001_initial.sql does.

DROP TABLE IF EXISTS points_ledger;
DROP TABLE IF EXISTS user_points;
