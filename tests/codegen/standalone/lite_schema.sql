CREATE TABLE notes (
    id      INTEGER PRIMARY KEY,
    title   TEXT NOT NULL,
    body    TEXT,
    pinned  BOOLEAN NOT NULL DEFAULT 0,
    due     DATE
);
