-- The version stamps of conditional reads (lib/http/conditional.py, ADR 0019) of a MariaDB
-- db with a table_versions table: each such sql/<db>/sqlc.yaml lists this file.

-- name: TablesVersion :one
-- One number that grows whenever any of the tables is written (each stamp only grows).
SELECT CAST(SUM(version) AS SIGNED) AS version FROM table_versions
WHERE name IN (sqlc.slice(names));
