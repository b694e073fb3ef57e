"""The live run's PostgreSQL (tests/codegen/conformance/live.py): a test database with the
schema applied, through asyncpg. A column's value of each kind is the first candidate of
its type's category (pg_type.typcategory) that the type's input accepts: NULL-makers where
PostgreSQL has them (an empty array or range, JSON `null`, an unbounded range, infinity)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

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

TABLES = """
SELECT c.oid, format('%I.%I', n.nspname, c.relname) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND NOT c.relispartition
ORDER BY 2
"""
COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, t.typcategory::text,
       coalesce(et.typcategory::text, ''), format_type(t.typelem, NULL),
       coalesce(enum_range.labels, ARRAY[]::text[]),
       (SELECT count(*) FROM pg_attribute f WHERE f.attrelid = t.typrelid AND f.attnum > 0)
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
LEFT JOIN LATERAL (
    SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels FROM pg_enum e
    WHERE e.enumtypid = coalesce(nullif(t.typbasetype, 0), t.oid)
) enum_range ON true
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum
"""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool
    category: str
    element_category: str
    element_type: str
    labels: list[str]
    fields: int  # a composite's


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def candidates(column: Column, kind: Values, row: int, text: str, category: str = "") -> list[str]:
    """What a value of the column's type may be written as, best first."""
    category = category or column.category
    number = kind.integer + row
    if category == "N":
        return [str(number)]
    if category == "S":
        return [text]
    if category == "B":
        return ["true" if kind.integer else "false"]
    if category == "D":
        if kind is OUT_OF_DOMAIN:
            return ["infinity" if not row else "-infinity", "00:00:00"]
        return ["2020-01-02 03:04:05", "03:04:05"]
    if category == "T":
        return [f"{number} day"]
    if category == "I":
        return ["127.0.0.1" if kind is not EMPTY else "0.0.0.0", "08:00:2b:01:02:03"]
    if category == "E":
        labels = column.labels or [""]
        return [labels[-1] if kind is OUT_OF_DOMAIN else labels[0]]
    if category == "C":  # a composite: every field NULL
        return ["(" + "," * max(column.fields - 1, 0) + ")"]
    if category == "A":
        if kind is EMPTY:
            return ["{}"]
        inner = candidates(column, kind, row, text, column.element_category)
        return ['{"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"}' for c in inner]
    if category == "R":  # ranges and multiranges: empty, unbounded (lower() is NULL)
        bounds = {EMPTY.name: "empty", OUT_OF_DOMAIN.name: "(,)"}.get(kind.name)
        ordinary = ["[1,2)", "[2020-01-01,2020-01-02)"]
        found = [bounds] if bounds else ordinary
        return [*found, *(f"{{{r}}}" for r in found), "{}"]
    json = {EMPTY.name: "{}", OUT_OF_DOMAIN.name: "null"}.get(kind.name, '{"a": 1}')
    some = str(uuid.UUID(int=max(number, 0)))
    return [json, some, "\\x" + kind.blob.hex(), text, "1", "(1,2)", "<(1,2),3>", "{1,2,3}"]


class PgDatabase:
    """A PostgreSQL test database with the schema; each state in a transaction."""

    aware = False  # a `timestamp` refuses an aware datetime, a `timestamptz` takes naive
    infinite = True

    def refuses(self, exc: Exception) -> bool:
        """A constraint refusing the state, a value out of a function's domain (class 22,
        the server's; the driver's refusal of an argument's type, raised as the same class
        from its encoder's error, is not one), no row id."""
        if isinstance(exc, asyncpg.DataError):  # or the driver's, of a value out of range
            return exc.__cause__ is None or isinstance(exc.__cause__, OverflowError)
        return isinstance(exc, asyncpg.IntegrityConstraintViolationError | LookupError)

    def __init__(self, conn: Any, tables: dict[str, list[Column]]) -> None:
        self.conn = conn
        self.tables = tables
        self.literals: dict[tuple[str, str, int, str], str | None] = {}

    @classmethod
    async def open(cls, dsn: str) -> PgDatabase:
        conn = await asyncpg.connect(dsn)
        tables = {}
        for oid, name in await conn.fetch(TABLES):
            rows = await conn.fetch(COLUMNS, oid)
            tables[name] = [Column(*r) for r in rows]
        return cls(conn, tables)

    async def close(self) -> None:
        await self.conn.close()

    async def literal(self, column: Column, kind: Values, row: int, text: str) -> str | None:
        """The first candidate the column's type accepts, as a typed SQL literal."""
        key = (column.type, kind.name, row, text)
        if key not in self.literals:
            self.literals[key] = None
            for candidate in candidates(column, kind, row, text):
                sql = f"{quoted(candidate)}::{column.type}"
                try:
                    await self.conn.fetchval(f"SELECT {sql} IS NULL")
                except asyncpg.PostgresError:
                    continue
                self.literals[key] = sql
                break
        return self.literals[key]

    async def row(self, table: str, kind: Values, row: int) -> list[str]:
        """The row's INSERT with each of its texts' alternatives (live.texts)."""
        return [await self.insert_one(table, kind, row, text) for text in texts(kind, row)]

    async def insert_one(self, table: str, kind: Values, row: int, text: str) -> str:
        names, values = [], []
        for column in self.tables[table]:
            value = await self.literal(column, kind, row, text)
            if not column.not_null and not kind.filled:
                value = "NULL"
            names.append(f'"{column.name}"')
            values.append(value or "DEFAULT")
        return (
            f"INSERT INTO {table} ({', '.join(names)}) OVERRIDING SYSTEM VALUE "
            f"VALUES ({', '.join(values)})"
        )

    async def insert(self, rows: list[list[str]]) -> list[str]:
        """The rows (each the first of its alternatives that goes in), retried until no
        more go in (a row referencing one not yet there); the statements that went in."""
        pending = list(rows)
        done: list[str] = []
        progress = True
        while pending and progress:
            progress = False
            for alternatives in list(pending):
                for sql in alternatives:
                    try:
                        async with self.conn.transaction():  # a savepoint
                            await self.conn.execute(sql)
                    except asyncpg.PostgresError:
                        continue
                    pending.remove(alternatives)
                    done.append(sql)
                    progress = True
                    break
        return done

    async def states(self) -> AsyncIterator[State]:
        for label, tables, kinds in subsets(list(self.tables)):
            for kind in kinds:  # one row per table, two of the out-of-domain kind
                rows = [await self.row(t, kind, r) for t in tables for r in range(kind.rows)]
                transaction = self.conn.transaction()
                await transaction.start()
                try:
                    inserts = await self.insert(rows)
                    if inserts or not tables:  # else the state of no row again
                        yield State(f"{label}, {kind.name} values", kind, inserts)
                finally:
                    await transaction.rollback()

    async def call(self, func: Callable[..., Any], args: dict[str, Any]) -> Any:
        transaction = self.conn.transaction()  # a savepoint
        await transaction.start()
        try:
            return await awaited(func(self.conn, **args))
        finally:
            await transaction.rollback()


async def live_run(
    dsn: str,
    project: Project,
    witnesses: Path = WITNESSES,
    results: list[tuple[str, Any, Any]] | None = None,
) -> list[Lie]:
    """The run of `project`'s package on the database `dsn` (its schema applied); the
    queries no call returned from printed; each call's result into `results` (live.run)."""
    database = await PgDatabase.open(dsn)
    unjudged: list[str] = []
    try:
        return await run(project.package, project.modules, database, witnesses, unjudged, results)
    finally:
        await database.close()
        print(f"{project.package}: no call returned from {unjudged}")
