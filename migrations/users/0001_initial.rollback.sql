-- 0001_initial: undo exactly what 0001_initial.sql does.

DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS email_tokens;
DROP TABLE IF EXISTS refresh_tokens;
DROP TABLE IF EXISTS refresh_token_families;
DROP TABLE IF EXISTS provider_details;
DROP TABLE IF EXISTS users;
DROP TYPE IF EXISTS email_token_purpose;
DROP TYPE IF EXISTS user_role;
DROP EXTENSION IF EXISTS pg_trgm;
