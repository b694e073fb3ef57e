-- A table with required and nullable columns, the shape every PATCH meets.
CREATE TABLE listings (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title       text          NOT NULL CHECK (btrim(title) <> ''),
    price       numeric(10,2) NOT NULL,
    note        text          NULL,
    discount    numeric(10,2) NULL,
    version     integer       NOT NULL DEFAULT 1
);
