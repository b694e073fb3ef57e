-- 0004_audit_events: the audit trail (ADR 0057): one row per successful AddUserPoints,
-- written in its own transaction by services/points/service.py.
--
-- Append-only from 0005_audit_events_append_only.sql on (its own file: sqlc's parser does
-- not read triggers, and the schema of sql/points/sqlc.yaml is this table).
--
-- Online-safe (docs/migrations.md, ADR 0018): a new table; the running release never
-- reads or writes it.
CREATE TABLE audit_events (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    occurred_at   DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    subject_id    VARCHAR(64)     NULL,
    subject_role  VARCHAR(32)     NULL,
    action        VARCHAR(128)    NOT NULL,
    resource      VARCHAR(64)     NOT NULL,
    resource_id   VARCHAR(128)    NULL,
    route         VARCHAR(255)    NOT NULL,
    request_id    VARCHAR(128)    NOT NULL,
    before_fields JSON            NULL,
    after_fields  JSON            NULL,
    CONSTRAINT audit_events_pkey PRIMARY KEY (id),
    KEY audit_events_occurred_at_id_idx (occurred_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
