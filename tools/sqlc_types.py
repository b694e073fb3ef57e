"""The server's types of every query, for sql/<db>/types.lock.json (`make sqlc-types`).

Each query is prepared (PostgreSQL) or run in a rolled-back transaction (MySQL) on a
throwaway database holding the schema; a query the server refuses is recorded with its
message (`file:line`) instead, and the plugin leaves it out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pymysql
import sqlparse

from codegen import pgcasts, typeslock
from codegen.errors import CodegenError
from codegen.plan import mysql_placeholders, pg_slices
from codegen.request import qualified
from codegen.runtime import expand_slices
from tools.databases import database_name, engine_of, with_database
from tools.dbadmin import create_database, drop_database, mysql_connect, psycopg_dsn
from tools.sqlc_run import (
    QueryFailures,
    SqlcError,
    query_files,
    request_without_rejected,
    server_dsn,
    sql_dir,
)


def lock_path(db: str) -> Path:
    return sql_dir(db) / "types.lock.json"


def schema_files(db: str, request: dict[str, Any]) -> list[Path]:
    return [p.resolve() for p in typeslock.schema_paths(request["settings"]["schema"], sql_dir(db))]


MYSQL_CODES = {
    0: "decimal", 1: "tinyint", 2: "smallint", 3: "int", 4: "float", 5: "double", 7: "timestamp",
    8: "bigint", 9: "mediumint", 10: "date", 11: "time", 12: "datetime", 13: "year",
    15: "varchar", 16: "bit", 245: "json", 246: "decimal", 247: "varchar", 248: "set",
    249: "blob", 250: "blob", 251: "blob", 252: "blob", 253: "varchar", 254: "char",
}  # fmt: skip
MYSQL_TEXT_CODES = {15, 249, 250, 251, 252, 253, 254}
MYSQL_BINARY_CHARSET = 63  # PyMySQL decodes every other charset to str


def _pg_name(t: Any) -> str:
    name = str(t.name)
    if t.kind == "array" and name.startswith("_"):
        name = name[1:] + "[]"
    return qualified(str(t.schema), name)


def _failure(q: dict[str, Any], exc: Exception) -> str:
    return f"query {q['name']}: server says: {' '.join(str(exc).split())}"


COMPOSITE_ATTRIBUTES = """
SELECT a.attname, t.typname, n.nspname, t.typcategory = 'A', t.typtype = 'c', t.oid
FROM pg_type c
JOIN pg_attribute a ON a.attrelid = c.typrelid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE c.oid = $1 ORDER BY a.attnum
"""


async def pg_composites(conn: Any, oid: int, name: str, found: typeslock.Composites) -> None:
    """`found[name]`: the attributes of composite type `oid`, nested composites too."""
    if name in found:
        return
    found[name] = []
    for attname, typname, schema, is_array, is_composite, type_oid in await conn.fetch(
        COMPOSITE_ATTRIBUTES, oid
    ):
        type_name = qualified(schema, typname[1:] + "[]" if is_array else typname)
        found[name].append((attname, type_name))
        if is_composite:
            await pg_composites(conn, type_oid, type_name, found)


UNTYPED = re.compile(r"could not determine data type of parameter \$(\d+)")


async def pg_prepare(conn: Any, q: dict[str, Any], sql: str) -> tuple[Any, dict[int, str]]:
    """PREPARE `sql`; where the server cannot type a parameter alone, again with sqlc's
    type for it (codegen/pgcasts.py), one parameter at a time: (statement, casts used)."""
    casts: dict[int, str] = {}
    while True:
        try:
            return await conn.prepare(pgcasts.cast_params(sql, casts)), casts
        except (asyncpg.IndeterminateDatatypeError, asyncpg.AmbiguousParameterError) as exc:
            match = UNTYPED.search(str(exc))
            number = int(match.group(1)) if match else 0
            params = q.get("params") or []
            column: dict[str, Any] = next(
                (p["column"] for p in params if p["number"] == number), {}
            )
            type_ = column.get("type") or {}
            name = qualified(type_.get("schema"), type_.get("name", "")).removeprefix("pg_catalog.")
            cast = pgcasts.sqlc_cast(
                name, bool(column.get("is_array") or column.get("is_sqlc_slice"))
            )
            if cast is None or number in casts:
                raise  # sqlc does not know the type either: refused, with the server's message
            casts[number] = cast


async def pg_types(
    dsn: str, queries: list[dict[str, Any]], composites: typeslock.Composites | None = None
) -> tuple[dict[str, typeslock.LockEntry], dict[str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        out: dict[str, typeslock.LockEntry] = {}
        failures: dict[str, str] = {}
        composites = {} if composites is None else composites
        for q in queries:
            slices = [
                p["number"] for p in q.get("params") or [] if p["column"].get("is_sqlc_slice")
            ]
            try:
                stmt, casts = await pg_prepare(conn, q, pg_slices(q["text"], slices, q["name"]))
            except (asyncpg.PostgresError, CodegenError) as exc:
                failures[q["name"]] = _failure(q, exc)
                continue
            used = [a.type for a in stmt.get_attributes()] + list(stmt.get_parameters())
            for t in used:
                if t.kind == "composite":
                    await pg_composites(conn, t.oid, _pg_name(t), composites)
            out[q["name"]] = typeslock.LockEntry(
                typeslock.sql_hash(q["text"]),
                [_pg_name(a.type) for a in stmt.get_attributes()],
                [_pg_name(p) for p in stmt.get_parameters()],
                casts,
            )
        return out, failures
    finally:
        await conn.close()


def _mysql_args(sql: str, params: list[dict[str, Any]]) -> list[Any]:
    """A value per placeholder that keeps the query valid: NULL, but 0 after LIMIT/OFFSET."""
    args: list[Any] = []
    for match, param in zip(re.finditer(r"(?<!%)%s", sql), params, strict=False):
        before = sql[: match.start()]
        in_limit = re.search(r"\b(LIMIT|OFFSET)\s*$|\bLIMIT\s+%s\s*,\s*$", before, re.I)
        value = 0 if in_limit else None
        args.append([value] if param["column"].get("is_sqlc_slice") else value)
    return args


def _mysql_column_type(cur: Any, sql: str, position: int) -> str:
    """The server's type of the column a placeholder is compared with or assigned to."""
    marks = list(re.finditer(r"(?<!%)%s", sql))
    start = marks[position].start()
    clause = r"\b(?:WHERE|AND|OR|ON|HAVING|WHEN|THEN|ELSE|LIMIT|OFFSET|VALUES)\b"
    left_edge = max([m.end() for m in re.finditer(clause, sql[:start], re.I)] or [0])
    right = re.search(clause, sql[start:], re.I)
    right_edge = start + (right.start() if right else len(sql) - start)
    tables = re.findall(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+`?(\w+)`?", sql, re.I)
    words = re.findall(r"`?(\w+)`?", sql[left_edge:start])[::-1]
    words += re.findall(r"`?(\w+)`?", sql[start + 2 : right_edge])
    for word in words:
        cur.execute(
            "SELECT DATA_TYPE, COLUMN_TYPE, TABLE_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND COLUMN_NAME = %s",
            (word,),
        )
        found = [row for row in cur.fetchall() if row[2] in tables]
        if len(found) == 1:
            data_type, column_type, table = found[0]
            if str(column_type).startswith("tinyint(1)"):
                return "boolean"
            if data_type in ("enum", "set"):
                return f"{table}_{word}".lower()
            return str(data_type)
    return ""


def mysql_types(
    dsn: str, queries: list[dict[str, Any]]
) -> tuple[dict[str, typeslock.LockEntry], dict[str, str]]:
    """aiomysql has no server-side prepare: run each query in a rolled-back transaction with
    values that keep it valid, read `cursor.description` and the fields' charsets."""
    out: dict[str, typeslock.LockEntry] = {}
    failures: dict[str, str] = {}
    with mysql_connect(dsn, database=database_name(dsn)) as conn:
        conn.autocommit(False)
        for q in queries:
            sql = mysql_placeholders(q["text"])
            params: list[dict[str, Any]] = q.get("params") or []
            columns: list[str] = []
            with conn.cursor() as cur:
                param_types = [
                    _mysql_column_type(cur, sql, i) if p["column"]["type"]["name"] == "any" else ""
                    for i, p in enumerate(params)
                ]
                if q["columns"]:
                    expanded, flat = expand_slices(sql, _mysql_args(sql, params))
                    try:
                        cur.execute(expanded, flat)
                    except pymysql.MySQLError as exc:
                        failures[q["name"]] = _failure(q, exc)
                        continue
                    finally:
                        conn.rollback()
                    fields = getattr(getattr(cur, "_result", None), "fields", None) or []
                    for i, d in enumerate(cur.description or ()):
                        code = int(d[1])
                        charset = fields[i].charsetnr if i < len(fields) else 0
                        if code in MYSQL_TEXT_CODES:
                            binary = charset == MYSQL_BINARY_CHARSET
                            columns.append("varbinary" if binary else "text")
                        else:
                            columns.append(MYSQL_CODES.get(code, f"code{code}"))
            out[q["name"]] = typeslock.LockEntry(
                typeslock.sql_hash(q["text"]), columns, param_types if any(param_types) else []
            )
    return out, failures


def mysql_created_databases(files: list[Path]) -> list[str]:
    """The databases a MySQL schema creates (CREATE DATABASE/SCHEMA): dropped after use."""
    pattern = r"\bCREATE\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?"
    found: list[str] = []
    for file in files:
        found += re.findall(pattern, typeslock.up_section(file.read_text()), re.I)
    return sorted(set(found))


def apply_schema(dsn: str, files: list[Path]) -> None:
    """Run the schema files (the up-migrations, in order) on a throwaway database."""
    if engine_of(dsn) == "postgresql":
        with psycopg.connect(psycopg_dsn(dsn), autocommit=True) as pg:
            for file in files:
                pg.execute(typeslock.up_section(file.read_text()).encode())
        return
    with mysql_connect(dsn, database=database_name(dsn)) as my, my.cursor() as cur:
        for file in files:
            for statement in sqlparse.split(typeslock.up_section(file.read_text())):
                if sqlparse.format(statement, strip_comments=True).strip():
                    cur.execute(statement)


@contextlib.contextmanager
def mysql_side_databases(dsn: str, names: list[str]) -> Iterator[None]:
    """Databases a schema creates beside its own are server-wide: one run at a time holds
    each name (GET_LOCK), and they are dropped afterwards, also on failure."""
    if not names:
        yield
        return
    with mysql_connect(dsn) as conn, conn.cursor() as cur:
        for name in names:
            cur.execute("SELECT GET_LOCK(%s, 120)", (f"fixup_sqlctypes_{name}",))
            if cur.fetchone() != (1,):
                raise SqlcError(f"another `types` run holds database {name!r} for 120 s")
        try:
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            yield
        finally:
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                cur.execute("SELECT RELEASE_LOCK(%s)", (f"fixup_sqlctypes_{name}",))


def server_types(
    db: str, request: dict[str, Any], composites: typeslock.Composites | None = None
) -> tuple[dict[str, typeslock.LockEntry], dict[str, str]]:
    """Every query's types from a throwaway database, and the message of each refused one
    (`queries/x.sql:LINE: query Name: server says: ...`)."""
    label = Path(db).name if "/" in db else db
    server = with_database(server_dsn(db), f"fixup_sqlctypes_{label}_{os.getpid()}")
    files = schema_files(db, request)
    side = mysql_created_databases(files) if engine_of(server) == "mysql" else []
    try:
        create_database(server)
    except (OSError, psycopg.Error, pymysql.MySQLError) as exc:
        raise SqlcError(f"{db}: cannot reach the server for the types lock: {exc}") from exc
    try:
        with mysql_side_databases(server, side):
            try:
                apply_schema(server, files)
            except (psycopg.Error, pymysql.MySQLError) as exc:
                raise SqlcError(f"{db}: the schema does not apply: {exc}") from exc
            if engine_of(server) == "postgresql":
                found = asyncio.run(pg_types(server, request["queries"], composites))
            else:
                found = mysql_types(server, request["queries"])
    finally:
        drop_database(server)
    entries, failures = found
    throwaway = f"{database_name(server)}."  # MariaDB names it in `FUNCTION db.f does not exist`
    return entries, {
        name: f"{where(db, name)}: {m.replace(throwaway, '')}" for name, m in failures.items()
    }


def where(db: str, query: str) -> str:
    """`queries/x.sql:LINE` of a query's `-- name:` line."""
    pattern = re.compile(rf"^--\s*name:\s*{re.escape(query)}\s", re.M)
    for file in query_files(db):
        text = (sql_dir(db) / file).read_text()
        if match := pattern.search(text):
            return f"{file}:{text.count(chr(10), 0, match.start()) + 1}"
    return query


def types(db: str, request: dict[str, Any] | None = None) -> None:
    """Write sql/<db>/types.lock.json; a refused query is named and kept in the lock with
    the server's message (the plugin does not generate it), the others are locked."""
    request = request or request_without_rejected(db)[0]
    composites: typeslock.Composites = {}
    entries, failures = server_types(db, request, composites)
    schema = typeslock.schema_hash(schema_files(db, request))
    hashes = {q["name"]: typeslock.sql_hash(q["text"]) for q in request["queries"]}
    refused = {name: (hashes[name], message) for name, message in failures.items()}
    lock_path(db).write_text(typeslock.dump(schema, entries, composites, refused))
    print(f"sqlc-types: {db}: {len(entries)} queries -> {lock_path(db)}")
    refused_failures(db)


def refused_failures(db: str) -> None:
    """QueryFailures naming every query the (current) lock says the server refused."""
    refused = typeslock.load_refused(lock_path(db))
    if refused:
        lines = "\n".join(message for _, message in sorted(refused.values(), key=lambda r: r[1]))
        raise QueryFailures(f"{db}: {len(refused)} queries refused by the server:\n{lines}")


def lock_is_current(db: str, request: dict[str, Any]) -> bool:
    schema, entries = typeslock.load(lock_path(db))
    if schema != typeslock.schema_hash(schema_files(db, request)):
        return False
    known = {name: e.sql_sha256 for name, e in entries.items()}
    known |= {name: sha for name, (sha, _) in typeslock.load_refused(lock_path(db)).items()}
    return all(known.get(q["name"]) == typeslock.sql_hash(q["text"]) for q in request["queries"])
