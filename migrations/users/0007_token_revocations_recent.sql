-- 0007_token_revocations_recent: the newest revocations by an index scan, never a scan of
-- the table (one row per account that ever ended its sessions): users reads the newest
-- one every second to check Redis still holds it, and every one younger than the longest
-- token life to put them back into a Redis that lost them (ADR 0010).
-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS token_revocations_not_before_idx;

CREATE INDEX CONCURRENTLY IF NOT EXISTS token_revocations_not_before_idx
    ON token_revocations (not_before);
