-- 0006_table_versions: a version stamp for user_points, so another service's conditional
-- read covers the balances it shows (the users list's points: GetPointsVersion, ADR 0056).
-- The triggers that bump it are 0007's: sqlc's MySQL parser refuses CREATE TRIGGER, and
-- this file is part of sql/points/sqlc.yaml's schema. Online-safe: a new table.

CREATE TABLE table_versions (
    name     VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    version  BIGINT NOT NULL,
    CONSTRAINT table_versions_pkey PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- never below the wall clock in microseconds: a database made again never repeats a stamp
INSERT INTO table_versions (name, version)
VALUES ('user_points', FLOOR(UNIX_TIMESTAMP(NOW(6)) * 1000000));
