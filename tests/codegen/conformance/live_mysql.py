"""The live run's MariaDB (tests/codegen/conformance/live.py): a test database with the
schema applied, through aiomysql (the generated code's driver). A column's value of each
kind follows its DATA_TYPE; a JSON column (MariaDB's LONGTEXT checked by json_valid) holds
`{"a": 1}`, `{}` or JSON `null`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from tests.codegen.conformance.live import (
    EMPTY,
    OUT_OF_DOMAIN,
    WITNESSES,
    Lie,
    Project,
    State,
    Values,
    awaited,
    run,
    subsets,
    texts,
)
from tests.codegen.test_runtime_mysql import connect

COLUMNS = """
SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.IS_NULLABLE = 'NO',
       EXISTS (SELECT 1 FROM information_schema.CHECK_CONSTRAINTS k
               WHERE k.CONSTRAINT_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME
                 AND k.CHECK_CLAUSE = concat('json_valid(`', c.COLUMN_NAME, '`)'))
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t USING (TABLE_SCHEMA, TABLE_NAME)
WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE'
  AND c.EXTRA NOT LIKE '%GENERATED%'
ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION
"""
NUMBERS = {
    "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double", "bit",
    "year",
}  # fmt: skip
TIMES = {"date": "2020-01-02", "datetime": "2020-01-02 03:04:05", "time": "03:04:05"}
TIMES["timestamp"] = TIMES["datetime"]
SYNTAX_ERROR = 1064
LABEL = re.compile(r"'((?:[^']|'')*)'")


@dataclass(frozen=True)
class Column:
    table: str
    name: str
    data_type: str
    column_type: str
    not_null: bool
    json: bool

    def value(self, kind: Values, row: int, text: str) -> str:
        """The column's value of `kind` (its texts `text`) as a SQL literal."""
        number = kind.integer + row
        if self.data_type in NUMBERS:
            return str(max(number, 0) if "unsigned" in self.column_type else number)
        if self.data_type in TIMES:
            return f"'{TIMES[self.data_type]}'"
        if self.json:
            return {EMPTY.name: "'{}'", OUT_OF_DOMAIN.name: "'null'"}.get(kind.name, "'[1]'")
        if self.data_type in ("enum", "set"):
            labels = LABEL.findall(self.column_type)
            if self.data_type == "set" or not labels:
                return "''"
            return f"'{labels[-1] if kind is OUT_OF_DOMAIN else labels[0]}'"
        if "binary" in self.data_type or "blob" in self.data_type:
            return f"X'{kind.blob.hex()}'" if kind.blob else "''"
        return f"'{text}'"


async def sql(conn: Any, statement: str) -> list[tuple[Any, ...]]:
    """A statement without parameters (its `%` kept), its rows."""
    async with conn.cursor() as cur:
        await cur.execute(statement, None)
        return list(await cur.fetchall())


class MariaDatabase:
    """A MariaDB test database with the schema; each state in a transaction."""

    aware = True  # the generated code stores UTC and refuses a naive datetime
    infinite = False  # MariaDB has no infinity

    def refuses(self, exc: Exception) -> bool:
        """A constraint refusing the state, a value out of range (the server's), a negative
        LIMIT (a syntax error in MariaDB's grammar), no row id."""
        if isinstance(exc, pymysql.err.ProgrammingError):
            return exc.args[0] == SYNTAX_ERROR and "near '-" in str(exc.args[1])
        refused = (
            pymysql.err.IntegrityError,
            pymysql.err.DataError,
            pymysql.err.OperationalError,
            LookupError,
        )
        return isinstance(exc, refused)

    def __init__(self, conn: Any, tables: dict[str, list[Column]]) -> None:
        self.conn = conn
        self.tables = tables

    @classmethod
    async def open(cls, dsn: str) -> MariaDatabase:
        conn = await connect(dsn)
        tables: dict[str, list[Column]] = {}
        for row in await sql(conn, COLUMNS):
            column = Column(*row[:4], bool(row[4]), bool(row[5]))
            tables.setdefault(column.table, []).append(column)
        return cls(conn, tables)

    async def close(self) -> None:
        self.conn.close()

    def row(self, table: str, kind: Values, row: int) -> list[str]:
        """The row's INSERT with each of its texts' alternatives (live.texts)."""
        columns = self.tables[table]
        names = ", ".join(f"`{c.name}`" for c in columns)
        rows = []
        for text in texts(kind, row):
            values = [
                c.value(kind, row, text) if c.not_null or kind.filled else "NULL" for c in columns
            ]
            rows.append(f"INSERT INTO `{table}` ({names}) VALUES ({', '.join(values)})")
        return rows

    async def insert(self, rows: list[list[str]]) -> list[str]:
        """The rows (each the first of its alternatives that goes in), retried until no
        more go in (a row referencing one not yet there); the statements that went in (a
        failed statement leaves MariaDB's transaction open)."""
        pending, done = list(rows), []
        progress = True
        while pending and progress:
            progress = False
            for alternatives in list(pending):
                for statement in alternatives:
                    try:
                        await sql(self.conn, statement)
                    except pymysql.err.MySQLError:
                        continue
                    pending.remove(alternatives)
                    done.append(statement)
                    progress = True
                    break
        return done

    async def states(self) -> AsyncIterator[State]:
        for label, tables, kinds in subsets(list(self.tables)):
            for kind in kinds:  # one row per table, two of the out-of-domain kind
                rows = [self.row(t, kind, r) for t in tables for r in range(kind.rows)]
                await sql(self.conn, "START TRANSACTION")
                try:
                    inserts = await self.insert(rows)
                    if inserts or not tables:  # else the state of no row again
                        yield State(f"{label}, {kind.name} values", kind, inserts)
                finally:
                    await sql(self.conn, "ROLLBACK")

    async def call(self, func: Callable[..., Any], args: dict[str, Any]) -> Any:
        await sql(self.conn, "SAVEPOINT live_call")
        try:
            return await awaited(func(self.conn, **args))
        finally:
            await sql(self.conn, "ROLLBACK TO SAVEPOINT live_call")


async def live_run(dsn: str, project: Project, witnesses: Path = WITNESSES) -> list[Lie]:
    """The run of `project`'s package on the database `dsn` (its schema applied); the
    queries no call returned from printed."""
    database = await MariaDatabase.open(dsn)
    unjudged: list[str] = []
    try:
        return await run(project.package, project.modules, database, witnesses, unjudged)
    finally:
        await database.close()
        print(f"{project.package}: no call returned from {unjudged}")
