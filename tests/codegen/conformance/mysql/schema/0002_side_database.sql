-- +goose Up
-- A second database: the types step must drop it afterwards (and hold its name meanwhile).
CREATE DATABASE IF NOT EXISTS fixup_conformance_side;
CREATE TABLE fixup_conformance_side.audit (id BIGINT NOT NULL PRIMARY KEY);

-- +goose Down
DROP DATABASE fixup_conformance_side;
