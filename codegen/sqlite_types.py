"""SQLite's own answer for every query: a throwaway in-memory database (the stdlib's
sqlite3) with the schema applied prepares each query (a query SQLite refuses is named with
its message) and gives each result column its declared type through a temporary view.

SQLite needs no server, so the plugin asks it at generation time: no types lock.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import replace
from pathlib import Path

from .placeholders import sqlite_marks
from .request import Table
from .typeslock import up_section

PROBE_VIEW = "sqlc_gen_fixup_probe"


class SqliteProbe:
    def __init__(self, schema_files: list[Path]) -> None:
        self.db = sqlite3.connect(":memory:")
        for file in schema_files:
            self.db.executescript(up_section(file.read_text()))

    def close(self) -> None:
        self.db.close()

    def correct(self, tables: dict[str, Table]) -> None:
        """Each table's columns NOT NULL as SQLite holds them (sqlc calls every primary
        key column NOT NULL)."""
        for name, table in tables.items():
            never = self.never_null(name)
            columns = [replace(c, not_null=c.name in never) for c in table.columns]
            tables[name] = replace(table, columns=columns)

    def never_null(self, table: str) -> set[str]:
        """The columns of `table` that SQLite never holds NULL in: the NOT NULL ones (a
        WITHOUT ROWID table's primary key is) and a rowid table's INTEGER PRIMARY KEY, the
        rowid itself, the one primary key with no index of its own. Any other primary key
        column takes NULL (sqlite.org/lang_createtable.html#the_primary_key), as does
        every column of a view or a virtual table (FTS5)."""
        indexes = self.db.execute("SELECT origin FROM pragma_index_list(?)", [table])
        rowid_alias = all(origin != "pk" for (origin,) in indexes.fetchall())
        columns = self.db.execute(
            'SELECT name, "notnull", pk FROM pragma_table_xinfo(?)', [table]
        ).fetchall()
        return {name for name, not_null, pk in columns if not_null or (pk and rowid_alias)}

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
        body = without_params(sql)
        try:
            self.db.execute(f"CREATE TEMP VIEW {PROBE_VIEW} AS {body}")
        except sqlite3.Error:
            return None
        try:
            rows = self.db.execute(f"PRAGMA temp.table_xinfo({PROBE_VIEW})").fetchall()
        finally:
            self.db.execute(f"DROP VIEW temp.{PROBE_VIEW}")
        return [str(row[2]) for row in rows]

    def expression_types(self, sql: str) -> list[str] | None:
        """For each result column of a SELECT, the type its expression has by SQLite's
        rules ('' where they say nothing): `||` and the text functions TEXT, AVG and TOTAL
        REAL, COUNT and LENGTH INTEGER, CAST its type, SUM INTEGER over integers, MAX, MIN,
        COALESCE, ABS their argument's type (a column's declared type, asked of a view)."""
        import sqlglot  # loaded only for SQLite expressions
        from sqlglot import expressions as exp

        try:
            tree = sqlglot.parse_one(without_params(sql), read="sqlite")
        except sqlglot.errors.ParseError:
            return None
        if not isinstance(tree, exp.Select):
            return None
        text_functions = (exp.DPipe, exp.Upper, exp.Lower, exp.Substring, exp.Trim, exp.Hex,
                          exp.GroupConcat, exp.Concat, exp.Replace)  # fmt: skip

        def column_type(node: exp.Expr) -> str:
            probe = tree.copy()
            probe.set("expressions", [node.copy()])
            found = self.declared_types(probe.sql("sqlite"))
            return found[0] if found else ""

        def kind(node: exp.Expr) -> str:
            node = node.unalias()
            name = node.name.upper() if isinstance(node, exp.Anonymous) else ""
            if isinstance(node, exp.Paren):
                return kind(node.this)
            if isinstance(node, exp.Column):
                return column_type(node)
            if isinstance(node, exp.Literal):
                if node.is_string:
                    return "TEXT"
                return "INTEGER" if node.this.lstrip("-").isdigit() else "REAL"
            if isinstance(node, exp.Cast):
                return node.to.sql("sqlite")
            if isinstance(node, text_functions) or name in ("PRINTF", "FORMAT"):
                return "TEXT"
            if isinstance(node, exp.Avg) or name == "TOTAL":
                return "REAL"
            if isinstance(node, (exp.Count, exp.Length)) or name in ("INSTR", "UNICODE"):
                return "INTEGER"
            if isinstance(node, exp.Sum):
                inner = affinity(kind(node.this))
                return {"INTEGER": "INTEGER", "REAL": "REAL"}.get(inner, "NUMERIC")
            if isinstance(node, (exp.Max, exp.Min, exp.Abs)) and not node.expressions:
                return kind(node.this)
            if isinstance(node, exp.Coalesce):
                kinds = {kind(n) for n in [node.this, *node.expressions]}
                return kinds.pop() if len(kinds) == 1 else ""
            if isinstance(node, (exp.Add, exp.Sub, exp.Mul)):
                sides = {affinity(kind(node.left)), affinity(kind(node.right))}
                if sides == {"INTEGER"}:
                    return "INTEGER"
                return "REAL" if sides <= {"INTEGER", "REAL"} else ""
            return ""

        return [kind(node) for node in tree.expressions]


def without_params(sql: str) -> str:
    """The statement with NULL for each placeholder (a view takes no parameters)."""
    return sqlite_marks(sql.rstrip().rstrip(";"), "NULL")[0]


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
