-- +goose Up
-- A goose migration in a schema directory: the down section must never be applied.
CREATE SCHEMA archive;
CREATE SCHEMA app;
CREATE TYPE app.role AS ENUM ('admin', 'member');
CREATE TYPE sign AS ENUM ('+', '-', '#', '*');

CREATE TABLE users (
    id       bigserial PRIMARY KEY,
    name     text NOT NULL,
    bio      text,
    age      integer,
    salary   numeric(10, 2),
    level    integer NOT NULL DEFAULT 1,
    profile  jsonb,
    tags     text[] NOT NULL DEFAULT '{}',
    role     app.role,
    sign     sign,
    left_at  timestamptz
);

CREATE TABLE archive.users (
    id    bigserial PRIMARY KEY,
    age   integer NOT NULL,
    name  text NOT NULL
);

CREATE TABLE posts (
    id       bigserial PRIMARY KEY,
    user_id  bigint NOT NULL REFERENCES users (id),
    title    text NOT NULL
);

CREATE TABLE bar (id integer);

-- +goose Down
DROP TABLE users;
