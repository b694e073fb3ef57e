-- 0001_initial: the departments table.
-- Deleted departments are hard-deleted; users keep the id (no FK across databases).

CREATE TABLE departments (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    name        text        NOT NULL,
    address     text        NOT NULL,
    version     integer     NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT departments_pkey PRIMARY KEY (id),
    CONSTRAINT departments_name_key UNIQUE (name),
    CONSTRAINT departments_name_chk CHECK (btrim(name) <> '' AND char_length(name) <= 100),
    CONSTRAINT departments_address_chk CHECK (btrim(address) <> '' AND char_length(address) <= 200),
    CONSTRAINT departments_version_chk CHECK (version >= 1)
);

-- List orderings (name is covered by departments_name_key; id is the tiebreaker).
CREATE INDEX departments_address_id_idx ON departments (address, id);
CREATE INDEX departments_created_at_id_idx ON departments (created_at, id);
