-- 0001_initial: currencies (reference data), orders, offers, jobs, reviews, the
-- transactional outbox to the points service, idempotency keys.
-- customer_id, provider_id and service_id name rows of other databases: no FK.

CREATE TYPE order_status AS ENUM ('OPEN', 'ASSIGNED', 'COMPLETED', 'CANCELLED');

CREATE TYPE offer_status AS ENUM ('PENDING', 'ACCEPTED', 'REJECTED', 'WITHDRAWN');

CREATE TYPE job_status AS ENUM ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'CANCELLED');

CREATE TABLE currencies (
    code         char(3)  NOT NULL,
    name         text     NOT NULL,
    minor_units  smallint NOT NULL,
    CONSTRAINT currencies_pkey PRIMARY KEY (code),
    CONSTRAINT currencies_code_chk CHECK (code ~ '^[A-Z]{3}$'),
    CONSTRAINT currencies_name_chk CHECK (btrim(name) <> '' AND char_length(name) <= 100),
    CONSTRAINT currencies_minor_units_chk CHECK (minor_units BETWEEN 0 AND 4)
);

-- ISO 4217 code, name and minor units.
INSERT INTO currencies (code, name, minor_units) VALUES
    ('AUD', 'Australian Dollar', 2),
    ('CAD', 'Canadian Dollar', 2),
    ('CHF', 'Swiss Franc', 2),
    ('CNY', 'Yuan Renminbi', 2),
    ('CZK', 'Czech Koruna', 2),
    ('DKK', 'Danish Krone', 2),
    ('EUR', 'Euro', 2),
    ('GBP', 'Pound Sterling', 2),
    ('GEL', 'Lari', 2),
    ('INR', 'Indian Rupee', 2),
    ('JPY', 'Yen', 0),
    ('NOK', 'Norwegian Krone', 2),
    ('PLN', 'Zloty', 2),
    ('SEK', 'Swedish Krona', 2),
    ('TRY', 'Turkish Lira', 2),
    ('UAH', 'Hryvnia', 2),
    ('USD', 'US Dollar', 2);

CREATE TABLE orders (
    id             uuid         NOT NULL DEFAULT gen_random_uuid(),
    customer_id    uuid         NOT NULL,
    customer_name  text         NULL,
    service_id     uuid         NOT NULL,
    description    text         NOT NULL,
    address        text         NOT NULL,
    time_start     timestamptz  NOT NULL,
    time_end       timestamptz  NOT NULL,
    status         order_status NOT NULL DEFAULT 'OPEN',
    version        integer      NOT NULL DEFAULT 1,
    created_at     timestamptz  NOT NULL DEFAULT now(),
    updated_at     timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT orders_pkey PRIMARY KEY (id),
    CONSTRAINT orders_customer_name_chk CHECK (char_length(customer_name) BETWEEN 1 AND 201),
    CONSTRAINT orders_description_chk CHECK (btrim(description) <> '' AND char_length(description) <= 2000),
    CONSTRAINT orders_address_chk CHECK (btrim(address) <> '' AND char_length(address) <= 500),
    CONSTRAINT orders_time_chk CHECK (time_end > time_start),
    CONSTRAINT orders_version_chk CHECK (version >= 1)
);

-- Lists: default orderby created_at desc, id tiebreak; the customer's own orders;
-- a provider's OPEN orders of the services they offer; filters status / service_id.
CREATE INDEX orders_created_at_id_idx ON orders (created_at, id);
CREATE INDEX orders_customer_id_created_at_id_idx ON orders (customer_id, created_at, id);
CREATE INDEX orders_status_service_id_created_at_id_idx ON orders (status, service_id, created_at, id);
CREATE INDEX orders_service_id_created_at_id_idx ON orders (service_id, created_at, id);

CREATE TABLE offers (
    id           uuid          NOT NULL DEFAULT gen_random_uuid(),
    order_id     uuid          NOT NULL,
    provider_id  uuid          NOT NULL,
    price        numeric(12,2) NOT NULL,
    currency     char(3)       NOT NULL,
    book_time    timestamptz   NOT NULL,
    message      text          NULL,
    status       offer_status  NOT NULL DEFAULT 'PENDING',
    created_at   timestamptz   NOT NULL DEFAULT now(),
    updated_at   timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT offers_pkey PRIMARY KEY (id),
    CONSTRAINT offers_order_id_fkey FOREIGN KEY (order_id)
        REFERENCES orders (id) ON DELETE RESTRICT,
    CONSTRAINT offers_currency_fkey FOREIGN KEY (currency)
        REFERENCES currencies (code) ON DELETE RESTRICT,
    -- target of jobs_offer_id_fkey: a job's offer belongs to the job's order
    CONSTRAINT offers_id_order_id_key UNIQUE (id, order_id),
    CONSTRAINT offers_price_chk CHECK (price > 0),
    CONSTRAINT offers_message_chk CHECK (char_length(message) <= 2000)
);

-- One PENDING offer per provider per order.
CREATE UNIQUE INDEX offers_order_id_provider_id_pending_key
    ON offers (order_id, provider_id) WHERE status = 'PENDING';
CREATE INDEX offers_order_id_created_at_id_idx ON offers (order_id, created_at, id);
CREATE INDEX offers_provider_id_created_at_id_idx ON offers (provider_id, created_at, id);

CREATE TABLE jobs (
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    order_id      uuid        NOT NULL,
    offer_id      uuid        NOT NULL,
    customer_id   uuid        NOT NULL,
    provider_id   uuid        NOT NULL,
    status        job_status  NOT NULL DEFAULT 'PENDING',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz NULL,
    CONSTRAINT jobs_pkey PRIMARY KEY (id),
    CONSTRAINT jobs_order_id_fkey FOREIGN KEY (order_id)
        REFERENCES orders (id) ON DELETE RESTRICT,
    CONSTRAINT jobs_offer_id_fkey FOREIGN KEY (offer_id, order_id)
        REFERENCES offers (id, order_id) ON DELETE RESTRICT,
    CONSTRAINT jobs_offer_id_key UNIQUE (offer_id),
    CONSTRAINT jobs_completed_at_chk CHECK ((status = 'COMPLETED') = (completed_at IS NOT NULL))
);

-- An order has at most one job that is not CANCELLED.
CREATE UNIQUE INDEX jobs_order_id_active_key ON jobs (order_id) WHERE status <> 'CANCELLED';
CREATE INDEX jobs_order_id_idx ON jobs (order_id);
CREATE INDEX jobs_customer_id_created_at_id_idx ON jobs (customer_id, created_at, id);
CREATE INDEX jobs_provider_id_created_at_id_idx ON jobs (provider_id, created_at, id);

CREATE TABLE reviews (
    id           uuid         NOT NULL DEFAULT gen_random_uuid(),
    job_id       uuid         NOT NULL,
    customer_id  uuid         NOT NULL,
    provider_id  uuid         NOT NULL,
    rating       numeric(2,1) NOT NULL,
    comment      text         NULL,
    created_at   timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT reviews_pkey PRIMARY KEY (id),
    CONSTRAINT reviews_job_id_fkey FOREIGN KEY (job_id)
        REFERENCES jobs (id) ON DELETE RESTRICT,
    CONSTRAINT reviews_job_id_key UNIQUE (job_id),
    CONSTRAINT reviews_rating_chk CHECK (rating BETWEEN 0.5 AND 5 AND rating * 2 = trunc(rating * 2)),
    CONSTRAINT reviews_comment_chk CHECK (char_length(comment) <= 2000)
);

-- GET /v1/providers/{id}/reviews (+ avg_rating)
CREATE INDEX reviews_provider_id_created_at_id_idx ON reviews (provider_id, created_at, id);

-- Transactional outbox: written in the transaction of the state change, delivered by
-- a relay (FOR UPDATE SKIP LOCKED) with retries; idempotency_key travels downstream.
CREATE TABLE outbox (
    id               bigint      GENERATED BY DEFAULT AS IDENTITY,
    topic            text        NOT NULL,
    aggregate_id     uuid        NOT NULL,
    payload          jsonb       NOT NULL,
    idempotency_key  text        NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    available_at     timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz NULL,
    last_error       text        NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT outbox_pkey PRIMARY KEY (id),
    CONSTRAINT outbox_idempotency_key_key UNIQUE (idempotency_key),
    CONSTRAINT outbox_topic_chk CHECK (btrim(topic) <> '' AND char_length(topic) <= 100),
    CONSTRAINT outbox_payload_chk CHECK (jsonb_typeof(payload) = 'object'),
    CONSTRAINT outbox_idempotency_key_chk CHECK (char_length(idempotency_key) BETWEEN 1 AND 128),
    CONSTRAINT outbox_attempts_chk CHECK (attempts >= 0)
);

-- The relay's queue: pending rows by due time.
CREATE INDEX outbox_pending_idx ON outbox (available_at, id) WHERE delivered_at IS NULL;

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
