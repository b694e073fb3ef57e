-- 0005_audit_events: the audit trail (ADR 0057): one row per successful write, written in
-- the write's own transaction by lib/http/audit.py.
--
-- Append-only: a statement trigger refuses UPDATE, DELETE and TRUNCATE. A trigger, not a
-- REVOKE: the services connect as the server's superuser, whom no grant binds.
--
-- Online-safe (docs/migrations.md, ADR 0018): a new table, its index built while nobody
-- uses it; the running release never reads or writes it.
CREATE TABLE audit_events (
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    subject_id    uuid        NULL,
    subject_role  text        NULL,
    action        text        NOT NULL,
    resource      text        NOT NULL,
    resource_id   text        NULL,
    route         text        NOT NULL,
    request_id    text        NOT NULL,
    before_fields jsonb       NULL,
    after_fields  jsonb       NULL,
    CONSTRAINT audit_events_pkey PRIMARY KEY (id)
);

-- the list's one ordering (occurred_at, then id) and its keyset walk
CREATE INDEX audit_events_occurred_at_id_idx ON audit_events (occurred_at, id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
