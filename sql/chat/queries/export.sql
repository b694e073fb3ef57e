-- A person's rows for their data export (services/chat/export.py, ADR 0059): the
-- conversations they take part in and the messages they wrote, oldest first, at most
-- @row_limit of each (the caller asks for one more than its bound).

-- name: ExportConversations :many
SELECT * FROM conversations WHERE customer_id = @user_id OR provider_id = @user_id
ORDER BY created_at, id LIMIT @row_limit;

-- name: ExportMessages :many
-- Through the person's conversations (indexed by participant, then by conversation), not
-- a scan of every message for an author (ADR 0023).
SELECT m.* FROM messages m
JOIN conversations c ON c.id = m.conversation_id
WHERE (c.customer_id = @user_id OR c.provider_id = @user_id) AND m.author_id = @user_id
ORDER BY m.created_at, m.id LIMIT @row_limit;
