-- The erasures a database has applied (lib/erasure.py, ADR 0060), shared by every
-- PostgreSQL db with an erased_users table: each sql/<db>/sqlc.yaml lists this file.

-- name: NewestErasure :one
-- The ledger time of the newest erasure applied here (null: none yet): the consumer lists
-- the ledger from a margin before it, so a round reads a few entries, not all of them.
SELECT max(ledgered_at)::timestamptz AS ledgered_at FROM erased_users;

-- name: ErasedAmong :many
-- Which of these users were erased here already (through the primary key).
SELECT user_id FROM erased_users WHERE user_id = ANY(@user_ids::uuid[]);

-- name: RecordErasure :execrows
-- In the transaction of the erasure itself, before it: applied and recorded together, or
-- neither; 0 when recorded already (another process of the service applied it: its
-- insert held the key until it committed).
INSERT INTO erased_users (user_id, ledgered_at) VALUES (@user_id, @ledgered_at)
ON CONFLICT (user_id) DO NOTHING;
