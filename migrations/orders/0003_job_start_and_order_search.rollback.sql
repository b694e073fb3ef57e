-- 0003_job_start_and_order_search: undo exactly what 0003_job_start_and_order_search.sql does

DROP INDEX IF EXISTS orders_search_trgm_idx;

ALTER TABLE jobs DROP COLUMN IF EXISTS started_at;

DROP EXTENSION IF EXISTS pg_trgm;
