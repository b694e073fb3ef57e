"""SQLite's own answer for every query: a throwaway in-memory database (the stdlib's
sqlite3) with the schema applied prepares each query (a query SQLite refuses is named with
its message) and gives each result column its declared type through a temporary view.

SQLite needs no server, so the plugin asks it at generation time: no types lock.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from .typeslock import up_section

PROBE_VIEW = "sqlc_gen_fixup_probe"


class SqliteProbe:
    def __init__(self, schema_files: list[Path]) -> None:
        self.db = sqlite3.connect(":memory:")
        for file in schema_files:
            self.db.executescript(up_section(file.read_text()))

    def close(self) -> None:
        self.db.close()

    def check(self, sql: str, marks: int) -> str | None:
        """SQLite's message when it cannot prepare `sql` (with `marks` `?` placeholders)."""
        try:
            self.db.execute("EXPLAIN " + sql, [None] * marks).fetchall()
        except sqlite3.Error as exc:
            return str(exc)
        return None

    def declared_types(self, sql: str) -> list[str] | None:
        """The declared type of each result column of a SELECT ('' for an expression), as
        a view over it reports them; None for a statement a view cannot hold."""
        if not re.match(r"\s*(WITH|SELECT|VALUES)\b", sql, re.IGNORECASE):
            return None
        body = re.sub(r"\?", "NULL", sql.rstrip().rstrip(";"))  # a view takes no parameters
        try:
            self.db.execute(f"CREATE TEMP VIEW {PROBE_VIEW} AS {body}")
        except sqlite3.Error:
            return None
        try:
            rows = self.db.execute(f"PRAGMA temp.table_xinfo({PROBE_VIEW})").fetchall()
        finally:
            self.db.execute(f"DROP VIEW temp.{PROBE_VIEW}")
        return [str(row[2]) for row in rows]


def affinity(declared: str) -> str:
    """SQLite's type affinity of a declared type (sqlite.org/datatype3.html, 3.1): INTEGER,
    TEXT, BLOB, REAL or NUMERIC, in that order of rules."""
    name = declared.upper()
    if "INT" in name:
        return "INTEGER"
    if any(word in name for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in name or not name:
        return "BLOB"
    if any(word in name for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"
