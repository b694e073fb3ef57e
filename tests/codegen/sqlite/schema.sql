-- The SQLite test schema: every affinity, a typeless column, the names the plugin reads
-- more from (BOOLEAN, DATE, DATETIME, JSON), a rowid alias and a foreign key.
CREATE TABLE authors (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    bio        TEXT,
    born       DATE,
    seen_at    DATETIME,
    rating     REAL NOT NULL DEFAULT 0,
    photo      BLOB,
    active     BOOLEAN NOT NULL DEFAULT 1,
    price      NUMERIC,
    profile    JSON,
    extra
);

CREATE TABLE books (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    author_id INTEGER NOT NULL REFERENCES authors (id),
    title     VARCHAR(80) NOT NULL
);
