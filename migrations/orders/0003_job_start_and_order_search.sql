-- 0003_job_start_and_order_search: when a job started (Job.started_at), and the order
-- search: `(description || ' ' || address) ILIKE '%' || $1 || '%'` through a trigram index.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE jobs ADD COLUMN started_at timestamptz NULL;

CREATE INDEX orders_search_trgm_idx ON orders
    USING gin ((description || ' ' || address) gin_trgm_ops);
