-- 0001_initial: the taxonomy (category types -> categories -> subcategories -> services)
-- and which provider offers which service. provider_id names a row of the users
-- database: no FK. A parent with children cannot be deleted (ON DELETE RESTRICT).

CREATE TABLE category_types (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    name        text        NOT NULL,
    version     integer     NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT category_types_pkey PRIMARY KEY (id),
    CONSTRAINT category_types_name_key UNIQUE (name),
    CONSTRAINT category_types_name_chk CHECK (btrim(name) <> '' AND char_length(name) <= 100),
    CONSTRAINT category_types_version_chk CHECK (version >= 1)
);

CREATE TABLE categories (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    type_id     uuid        NOT NULL,
    name        text        NOT NULL,
    version     integer     NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT categories_pkey PRIMARY KEY (id),
    CONSTRAINT categories_type_id_fkey FOREIGN KEY (type_id)
        REFERENCES category_types (id) ON DELETE RESTRICT,
    CONSTRAINT categories_type_id_name_key UNIQUE (type_id, name),
    CONSTRAINT categories_name_chk CHECK (btrim(name) <> '' AND char_length(name) <= 100),
    CONSTRAINT categories_version_chk CHECK (version >= 1)
);

CREATE INDEX categories_name_id_idx ON categories (name, id);

CREATE TABLE subcategories (
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    category_id  uuid        NOT NULL,
    name         text        NOT NULL,
    version      integer     NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT subcategories_pkey PRIMARY KEY (id),
    CONSTRAINT subcategories_category_id_fkey FOREIGN KEY (category_id)
        REFERENCES categories (id) ON DELETE RESTRICT,
    CONSTRAINT subcategories_category_id_name_key UNIQUE (category_id, name),
    CONSTRAINT subcategories_name_chk CHECK (btrim(name) <> '' AND char_length(name) <= 100),
    CONSTRAINT subcategories_version_chk CHECK (version >= 1)
);

CREATE INDEX subcategories_name_id_idx ON subcategories (name, id);

CREATE TABLE services (
    id              uuid          NOT NULL DEFAULT gen_random_uuid(),
    subcategory_id  uuid          NOT NULL,
    name            text          NOT NULL,
    description     text          NOT NULL DEFAULT '',
    base_price      numeric(12,2) NOT NULL,
    currency        char(3)       NOT NULL DEFAULT 'USD',
    version         integer       NOT NULL DEFAULT 1,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT services_pkey PRIMARY KEY (id),
    CONSTRAINT services_subcategory_id_fkey FOREIGN KEY (subcategory_id)
        REFERENCES subcategories (id) ON DELETE RESTRICT,
    CONSTRAINT services_subcategory_id_name_key UNIQUE (subcategory_id, name),
    CONSTRAINT services_name_chk CHECK (btrim(name) <> '' AND char_length(name) <= 200),
    CONSTRAINT services_description_chk CHECK (char_length(description) <= 2000),
    CONSTRAINT services_base_price_chk CHECK (base_price >= 0),
    CONSTRAINT services_currency_chk CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT services_version_chk CHECK (version >= 1)
);

CREATE INDEX services_name_id_idx ON services (name, id);

CREATE TABLE provider_services (
    provider_id  uuid        NOT NULL,
    service_id   uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT provider_services_pkey PRIMARY KEY (provider_id, service_id),
    CONSTRAINT provider_services_service_id_fkey FOREIGN KEY (service_id)
        REFERENCES services (id) ON DELETE CASCADE
);

-- GET /v1/services/{id}/providers
CREATE INDEX provider_services_service_id_provider_id_idx
    ON provider_services (service_id, provider_id);
