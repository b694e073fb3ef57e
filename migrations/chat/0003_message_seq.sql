-- 0003_message_seq: a gap-free sequence per conversation orders its messages (ADR 0011).
-- A writer takes the next number with `UPDATE conversations SET last_seq = last_seq + 1
-- ... RETURNING` in the transaction of its INSERT: the row lock makes writers of one
-- conversation take turns, so number N+1 is handed out only after N committed (or rolled
-- back and is handed out again). A reader paging by seq therefore never skips a message
-- that commits later, which (created_at, id) cannot promise: now() is the start of the
-- transaction, so a slow writer commits an older created_at after a reader passed it.

ALTER TABLE conversations
    ADD COLUMN last_seq bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_message_at timestamptz,
    ADD CONSTRAINT conversations_last_seq_chk CHECK (last_seq >= 0);

ALTER TABLE messages ADD COLUMN seq bigint;

-- messages written before this migration: numbered in their old order
UPDATE messages AS m
SET seq = numbered.n
FROM (
    SELECT id, row_number() OVER (PARTITION BY conversation_id ORDER BY created_at, id) AS n
    FROM messages
) AS numbered
WHERE m.id = numbered.id;

UPDATE conversations AS c
SET last_seq = stats.last_seq, last_message_at = stats.last_at
FROM (
    SELECT conversation_id, max(seq) AS last_seq, max(created_at) AS last_at
    FROM messages GROUP BY conversation_id
) AS stats
WHERE c.id = stats.conversation_id;

ALTER TABLE messages
    ALTER COLUMN seq SET NOT NULL,
    ADD CONSTRAINT messages_seq_chk CHECK (seq >= 1),
    -- also the index of both keyset directions (seq < cursor DESC, seq > cursor ASC)
    ADD CONSTRAINT messages_conversation_id_seq_key UNIQUE (conversation_id, seq);

DROP INDEX messages_conversation_id_created_at_id_idx;

