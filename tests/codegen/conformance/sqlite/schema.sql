-- The SQLite conformance schema: primary keys that take NULL (all but INTEGER PRIMARY KEY),
-- a WITHOUT ROWID table, an FTS5 table, text that is not a date, numbers out of a
-- function's domain.
CREATE TABLE owners (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL,
    note  TEXT
);

CREATE TABLE pets (
    id       INT PRIMARY KEY,
    owner_id INTEGER NOT NULL,
    name     TEXT NOT NULL,
    weight   REAL NOT NULL,
    age      INTEGER NOT NULL,
    born     TEXT NOT NULL,
    doc      TEXT NOT NULL
);

CREATE TABLE tags (
    code  TEXT PRIMARY KEY,
    big   BIGINT NOT NULL
);

CREATE TABLE counters (
    k  TEXT PRIMARY KEY,
    n  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE legacy (
    id  BIGINT PRIMARY KEY,
    v   TEXT NOT NULL
);

CREATE VIRTUAL TABLE notes USING fts5(title, body);
