-- 0009_sessions: what a person sees of their sessions (refresh families) and when each last
-- proved who it is (ADR 0055). authenticated_at: the login or the latest re-authentication
-- (NULL on a family older than this migration: its created_at counts); last_used_at: the
-- latest refresh; user_agent and address: the login's, the address coarse (IPv4 /24, IPv6
-- /48), never the full one; the service bounds both (services/users/session_list.py). All
-- NULL-able: an ADD COLUMN without a rewrite.

ALTER TABLE refresh_token_families
    ADD COLUMN authenticated_at timestamptz NULL,
    ADD COLUMN last_used_at timestamptz NULL,
    ADD COLUMN user_agent text NULL,
    ADD COLUMN address text NULL;

