-- 0007_token_revocations_recent: undo exactly what 0007_token_revocations_recent.sql does
-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS token_revocations_not_before_idx;
