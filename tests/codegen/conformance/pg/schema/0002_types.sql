-- +goose Up
CREATE TABLE exotic (
    id     serial PRIMARY KEY,
    b      bit(3),
    vb     varbit,
    mac    macaddr,
    mac8   macaddr8,
    m      money,
    pt     point,
    bx     box,
    ln     line,
    ls     lseg,
    pa     path,
    pg     polygon,
    ci     circle,
    r      int4range,
    nr     numrange,
    dr     daterange,
    mr     int4multirange,
    tsv    tsvector,
    x      xid
);

CREATE TYPE address AS (street text, zip integer, sign sign);
CREATE TYPE shipment AS (dest address, weight numeric, tags text[]);

CREATE TABLE parcels (
    id    serial PRIMARY KEY,
    ship  shipment NOT NULL,
    home  address
);

-- a table no query uses, with a type the plugin cannot map: `Any`, accepted by sqlc.yaml's allow
CREATE TABLE unused (id integer, snap pg_snapshot);

-- +goose Down
DROP TABLE parcels;
DROP TYPE shipment;
DROP TYPE address;
DROP TABLE exotic;
DROP TABLE unused;
