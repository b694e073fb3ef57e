-- 0001_initial: conversations (one per order and provider) and their messages.
-- order_id, customer_id, provider_id and author_id name rows of other databases: no FK.

CREATE TABLE conversations (
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    order_id     uuid        NOT NULL,
    customer_id  uuid        NOT NULL,
    provider_id  uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT conversations_pkey PRIMARY KEY (id),
    CONSTRAINT conversations_order_id_provider_id_key UNIQUE (order_id, provider_id),
    CONSTRAINT conversations_participants_chk CHECK (customer_id <> provider_id)
);

-- GET /v1/conversations (mine): as customer or as provider, newest first.
CREATE INDEX conversations_customer_id_created_at_idx ON conversations (customer_id, created_at, id);
CREATE INDEX conversations_provider_id_created_at_idx ON conversations (provider_id, created_at, id);

CREATE TABLE messages (
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    conversation_id  uuid        NOT NULL,
    author_id        uuid        NOT NULL,
    body             text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_pkey PRIMARY KEY (id),
    CONSTRAINT messages_conversation_id_fkey FOREIGN KEY (conversation_id)
        REFERENCES conversations (id) ON DELETE CASCADE,
    -- 1..4000 characters once spaces, tabs and line breaks around it are trimmed
    CONSTRAINT messages_body_chk CHECK (char_length(btrim(body, E' \t\n\r')) BETWEEN 1 AND 4000)
);

-- Keyset pages: (created_at, id) < cursor newest first, > cursor oldest first.
CREATE INDEX messages_conversation_id_created_at_id_idx
    ON messages (conversation_id, created_at DESC, id DESC);

-- Idempotency-Key replay store: the first response per (caller, key), kept 24 h.
CREATE TABLE idempotency_keys (
    caller            text        NOT NULL,
    key               text        NOT NULL,
    request_hash      bytea       NOT NULL,
    status_code       smallint    NOT NULL,
    response_headers  jsonb       NOT NULL DEFAULT '{}'::jsonb,
    response_body     bytea       NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (caller, key),
    CONSTRAINT idempotency_keys_caller_chk CHECK (char_length(caller) BETWEEN 1 AND 255),
    CONSTRAINT idempotency_keys_key_chk CHECK (char_length(key) BETWEEN 1 AND 255),
    CONSTRAINT idempotency_keys_status_code_chk CHECK (status_code BETWEEN 100 AND 599)
);

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
