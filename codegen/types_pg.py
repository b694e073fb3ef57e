"""The types step on PostgreSQL (the `[postgresql]` extra, asyncpg): every query PREPAREd
on a throwaway database holding the schema; its parameters' and columns' types read back."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import asyncpg

from . import pgcasts, typeslock
from .errors import CodegenError
from .placeholders import pg_slices
from .request import Column, qualified

ServerError = asyncpg.PostgresError  # what the server answers when it refuses a statement

COMPOSITE_ATTRIBUTES = """
SELECT a.attname, t.typname, n.nspname, t.typcategory = 'A', t.typtype = 'c', t.oid
FROM pg_type c
JOIN pg_attribute a ON a.attrelid = c.typrelid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE c.oid = $1 ORDER BY a.attnum
"""
UNTYPED = re.compile(r"could not determine data type of parameter \$(\d+)")


def type_name(t: Any) -> str:
    """asyncpg's Type as the lock writes it: `schema.name` outside the default schemas,
    an array as `element[]`."""
    name = str(t.name)
    if t.kind == "array" and name.startswith("_"):
        name = name[1:] + "[]"
    return qualified(str(t.schema), name)


async def composites(conn: Any, oid: int, name: str, found: typeslock.Composites) -> None:
    """`found[name]`: the attributes of composite type `oid`, nested composites too."""
    if name in found:
        return
    found[name] = []
    for attname, typname, schema, is_array, is_composite, type_oid in await conn.fetch(
        COMPOSITE_ATTRIBUTES, oid
    ):
        attribute_type = qualified(schema, typname[1:] + "[]" if is_array else typname)
        found[name].append((attname, attribute_type))
        if is_composite:
            await composites(conn, type_oid, attribute_type, found)


async def prepare(conn: Any, q: dict[str, Any], sql: str) -> tuple[Any, dict[int, str]]:
    """PREPARE `sql`; where the server cannot type a parameter alone, again with sqlc's
    type for it (pgcasts.py), one parameter at a time: (statement, casts used)."""
    casts: dict[int, str] = {}
    while True:
        try:
            return await conn.prepare(pgcasts.cast_params(sql, casts)), casts
        except (asyncpg.IndeterminateDatatypeError, asyncpg.AmbiguousParameterError) as exc:
            match = UNTYPED.search(str(exc))
            number = int(match.group(1)) if match else 0
            params = q.get("params") or []
            col = Column.parse(next((p["column"] for p in params if p["number"] == number), {}))
            cast = pgcasts.sqlc_cast(col.type.name, col.is_array or col.is_sqlc_slice)
            if cast is None or number in casts:
                raise  # sqlc does not know the type either: refused, with the server's message
            casts[number] = cast


async def query_types(
    dsn: str, queries: list[dict[str, Any]], found: typeslock.Composites
) -> typeslock.Found:
    """Every query's types on the database at `dsn` (the schema applied), the composite
    types they use into `found`, and the server's message for each query it refuses."""
    conn = await asyncpg.connect(dsn)
    try:
        out: dict[str, typeslock.LockEntry] = {}
        failures: dict[str, str] = {}
        for q in queries:
            slices = [
                p["number"] for p in q.get("params") or [] if p["column"].get("is_sqlc_slice")
            ]
            try:
                stmt, casts = await prepare(conn, q, pg_slices(q["text"], slices, q["name"]))
            except (asyncpg.PostgresError, CodegenError) as exc:
                failures[q["name"]] = typeslock.refusal(q["name"], exc)
                continue
            used = [a.type for a in stmt.get_attributes()] + list(stmt.get_parameters())
            for t in used:
                if t.kind == "composite":
                    await composites(conn, t.oid, type_name(t), found)
            out[q["name"]] = typeslock.LockEntry(
                typeslock.sql_hash(q["text"]),
                [type_name(a.type) for a in stmt.get_attributes()],
                [type_name(p) for p in stmt.get_parameters()],
                casts,
            )
        return out, failures
    finally:
        await conn.close()


async def _execute(dsn: str, statements: Iterable[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def apply_schema(dsn: str, files: list[Path]) -> None:
    """Run the schema files (the up-migrations, in order) on the database at `dsn`; one of
    comments only (a fresh migration) changes nothing and is not sent."""
    scripts = (typeslock.up_section(file.read_text()) for file in files)
    await _execute(dsn, (script for script in scripts if typeslock.has_statement(script)))


async def create_database(dsn: str, name: str) -> None:
    await _execute(dsn, [f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"])


async def drop_database(dsn: str, name: str) -> None:
    await _execute(dsn, [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'])
