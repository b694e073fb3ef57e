"""The live run's SQLite (tests/codegen/conformance/live.py): an in-memory database with
the schema, through the standard library's sqlite3."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any

from codegen.sqlite_types import affinity
from tests.codegen.conformance.live import DATE, DATETIME, State, Values, awaited, subsets


class SqliteDatabase:
    """An in-memory SQLite with the schema; each state in a transaction rolled back."""

    aware = False
    infinite = True

    def refuses(self, exc: Exception) -> bool:
        """A state a write refuses, a value a decoder refuses ('' as a DATE), no rowid."""
        refused = (sqlite3.IntegrityError, sqlite3.OperationalError, ValueError, LookupError)
        return isinstance(exc, refused)

    def __init__(self, schema: str) -> None:
        self.conn = sqlite3.connect(":memory:", isolation_level=None)
        self.conn.executescript(schema)
        names = self.conn.execute(
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type IN "
            "('table', 'virtual') AND name NOT LIKE 'sqlite%'"
        ).fetchall()
        self.tables: dict[str, list[tuple[str, str, bool]]] = {}
        for (name,) in names:
            rows = self.conn.execute(
                'SELECT name, type, "notnull" FROM pragma_table_xinfo(?) WHERE hidden = 0',
                [name],
            ).fetchall()
            self.tables[name] = [(c, t, bool(n)) for c, t, n in rows]

    def value(self, declared: str, kind: Values, row: int) -> object:
        name = declared.upper()
        sign = -1 if row else 1  # the second row: -Inf beside Inf
        if name in ("DATE", "DATETIME", "TIMESTAMP", "JSON", "BOOLEAN", "BOOL"):
            special = {"DATE": DATE.isoformat(), "JSON": "{}", "BOOLEAN": kind.integer != 0}
            special["BOOL"] = special["BOOLEAN"]
            return special.get(name, str(DATETIME))
        found = affinity(declared)
        if found == "TEXT":
            return kind.text
        if found == "BLOB" and declared:
            return kind.blob
        if found == "REAL" or (found in ("BLOB", "NUMERIC") and kind.rows == 2):
            return sign * kind.real
        return kind.integer + row

    def insert(self, tables: list[str], kind: Values) -> list[str]:
        """One row per table (two for Inf/-Inf), nullable columns NULL (set when the kind
        fills them); the statements that went in (a row the schema refuses is left out)."""
        done = []
        for table in tables:
            columns = [c for c in self.tables[table] if c[2] or kind.filled]
            for row in range(kind.rows):
                values = [self.value(t, kind, row) for _, t, _ in columns]
                names = ", ".join(f'"{c}"' for c, _, _ in columns)
                marks = ", ".join("?" * len(values))
                sql = f'INSERT INTO "{table}" ({names}) VALUES ({marks})' if columns else ""
                sql = sql or f'INSERT INTO "{table}" DEFAULT VALUES'
                try:
                    self.conn.execute(sql, values)
                except sqlite3.Error:
                    continue
                if values:  # the values as SQL literals, for replay
                    quoted = self.conn.execute(f"SELECT {marks.replace('?', 'quote(?)')}", values)
                    sql = sql.replace(marks, ", ".join(map(str, quoted.fetchone())))
                done.append(sql)
        return done

    async def states(self) -> AsyncIterator[State]:
        for label, tables, kinds in subsets(list(self.tables)):
            for kind in kinds:
                self.conn.execute("BEGIN")
                try:
                    inserts = self.insert(tables, kind)
                    if inserts or not tables:  # else the state of no row again
                        yield State(f"{label}, {kind.name} values", kind, inserts)
                finally:
                    self.conn.execute("ROLLBACK")

    async def call(self, func: Callable[..., Any], args: dict[str, Any]) -> Any:
        self.conn.execute("SAVEPOINT call")
        try:
            return await awaited(func(self.conn, **args))
        finally:
            self.conn.execute("ROLLBACK TO call")
