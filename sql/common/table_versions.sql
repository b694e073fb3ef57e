-- The version stamps of conditional reads (lib/http/conditional.py, ADR 0019), shared by
-- every PostgreSQL db with a table_versions table: each sql/<db>/sqlc.yaml lists this file.

-- name: TablesVersion :one
-- One number that grows whenever any of the tables is written (each stamp only grows).
SELECT sum(version)::bigint AS version FROM table_versions WHERE name = ANY(@names::text[]);
