-- Conversations and messages (docs/api.md, "chat"; ADR 0011 for the sequence).

-- name: GetConversation :one
SELECT * FROM conversations WHERE id = @id;

-- name: FindConversation :one
SELECT * FROM conversations WHERE order_id = @order_id AND provider_id = @provider_id;

-- name: CreateConversation :one
-- NULL when it exists already: the caller reads it with FindConversation (200, not 201).
INSERT INTO conversations (order_id, customer_id, provider_id)
VALUES (@order_id, @customer_id, @provider_id)
ON CONFLICT (order_id, provider_id) DO NOTHING
RETURNING *;

-- name: CountConversations :one
-- GET /v1/conversations: the caller's, as customer or as provider.
SELECT count(*) FROM conversations WHERE customer_id = @user_id OR provider_id = @user_id;

-- name: ListConversations :many
-- last_message_at orders by the last activity: the last message's time, the creation's
-- when none; id breaks ties (fixup: sort writes a statement per key and direction).
-- fixup: sort created_at, last_message_at=coalesce(last_message_at, created_at), then id
SELECT * FROM conversations
WHERE customer_id = @user_id OR provider_id = @user_id
LIMIT @row_limit OFFSET @row_offset;

-- name: NextSeq :one
-- The next message number of a conversation; the row stays locked until the transaction
-- ends, so writers of one conversation take turns and numbers commit in order (no gaps).
UPDATE conversations SET last_seq = last_seq + 1, last_message_at = now()
WHERE id = @id
RETURNING last_seq, last_message_at;

-- name: InsertMessage :one
INSERT INTO messages (conversation_id, seq, author_id, body, created_at)
VALUES (@conversation_id, @seq, @author_id, @body, @created_at)
RETURNING *;

-- name: MessagesBefore :many
-- Keyset page, newest first: numbers strictly below the cursor's.
SELECT * FROM messages
WHERE conversation_id = @conversation_id AND seq < @before_seq
ORDER BY seq DESC
LIMIT @page_size;

-- name: MessagesAfter :many
-- Keyset page, oldest first: the catch-up after a reconnect.
SELECT * FROM messages
WHERE conversation_id = @conversation_id AND seq > @after_seq
ORDER BY seq ASC
LIMIT @page_size;

-- name: EraseAuthorMessages :exec
-- The erasure of a person (ADR 0060): the messages they wrote keep their place in the
-- conversation (the other party's replies still read in order), their words go.
UPDATE messages SET body = '[erased]' WHERE author_id = @user_id AND body <> '[erased]';
