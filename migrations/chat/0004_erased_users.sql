-- 0004_erased_users: the erasures this database has applied (lib/erasure.py, ADR 0060).
-- The ledger of erasures lives outside every database (object storage); a consumer applies
-- each entry not found here and records it in the same transaction. A restore to a time
-- before an erasure loses its row here, so the consumer applies that erasure again.
CREATE TABLE erased_users (
    user_id      uuid        NOT NULL,
    ledgered_at  timestamptz NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT erased_users_pkey PRIMARY KEY (user_id)
);

CREATE INDEX erased_users_ledgered_at_idx ON erased_users (ledgered_at);
