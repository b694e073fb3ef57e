-- 0004_services_keyset: undo exactly what 0004_services_keyset.sql does
-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS services_created_at_id_idx;

DROP INDEX CONCURRENTLY IF EXISTS services_base_price_id_idx;
