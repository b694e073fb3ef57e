-- Small schema exercising every PostgreSQL type the plugin maps.
CREATE TYPE mood AS ENUM ('happy', 'sad', 'so-so');

CREATE TABLE authors (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    bio         text,
    mood        mood NOT NULL DEFAULT 'happy',
    tags        text[] NOT NULL DEFAULT '{}',
    scores      int4[],
    meta        jsonb,
    raw         json,
    salary      numeric(12,2),
    age         integer,
    ratio       double precision,
    small       smallint,
    active      boolean NOT NULL DEFAULT true,
    born        date,
    wakes       time,
    nap         interval,
    ip          inet,
    net         cidr,
    avatar      bytea,
    uid         uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE books (
    id         bigserial PRIMARY KEY,
    author_id  bigint NOT NULL REFERENCES authors (id),
    title      text NOT NULL,
    price      numeric(10,2) NOT NULL
);
