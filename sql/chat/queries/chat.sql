-- Starter set; the conversation endpoints' queries come with the chat issue.

-- name: GetConversation :one
SELECT * FROM conversations WHERE id = @id;

-- name: FindConversation :one
SELECT * FROM conversations WHERE order_id = @order_id AND provider_id = @provider_id;

-- name: CreateConversation :one
INSERT INTO conversations (order_id, customer_id, provider_id)
VALUES (@order_id, @customer_id, @provider_id)
ON CONFLICT (order_id, provider_id) DO NOTHING
RETURNING *;

-- name: InsertMessage :one
INSERT INTO messages (conversation_id, author_id, body) VALUES (@conversation_id, @author_id, @body)
RETURNING *;

-- name: MessagesBefore :many
-- Keyset page, newest first: rows strictly older than the cursor (created_at, id).
SELECT * FROM messages
WHERE conversation_id = @conversation_id AND (created_at, id) < (@before_at::timestamptz, @before_id::uuid)
ORDER BY created_at DESC, id DESC
LIMIT @page_size;

-- name: MessagesAfter :many
-- Keyset page, oldest first: the catch-up after a reconnect.
SELECT * FROM messages
WHERE conversation_id = @conversation_id AND (created_at, id) > (@after_at::timestamptz, @after_id::uuid)
ORDER BY created_at ASC, id ASC
LIMIT @page_size;
