-- 0003_message_seq: undo exactly what 0003_message_seq.sql does.

CREATE INDEX messages_conversation_id_created_at_id_idx
    ON messages (conversation_id, created_at DESC, id DESC);

ALTER TABLE messages
    DROP CONSTRAINT messages_conversation_id_seq_key,
    DROP CONSTRAINT messages_seq_chk,
    DROP COLUMN seq;

ALTER TABLE conversations
    DROP CONSTRAINT conversations_last_seq_chk,
    DROP COLUMN last_message_at,
    DROP COLUMN last_seq;
