-- 0004_services_keyset: GET /v1/services pages by keyset (`?cursor=`, lib/http/cursor.py,
-- ADR 0023) on each of its orderings: `(key, id) > ($1, $2)` reads the next page only with
-- an index on (key, id). name has its own (0001); base_price and created_at get theirs.
-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS services_base_price_id_idx;

CREATE INDEX CONCURRENTLY IF NOT EXISTS services_base_price_id_idx ON services (base_price, id);

DROP INDEX CONCURRENTLY IF EXISTS services_created_at_id_idx;

CREATE INDEX CONCURRENTLY IF NOT EXISTS services_created_at_id_idx ON services (created_at, id);
