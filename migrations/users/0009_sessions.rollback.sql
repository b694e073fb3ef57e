ALTER TABLE refresh_token_families
    DROP COLUMN IF EXISTS address,
    DROP COLUMN IF EXISTS user_agent,
    DROP COLUMN IF EXISTS last_used_at,
    DROP COLUMN IF EXISTS authenticated_at;
