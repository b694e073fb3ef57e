"""The types step on MySQL/MariaDB (the `[mysql]` extra, PyMySQL). MySQL has no
server-side PREPARE a client can read types from: each query runs in a rolled-back
transaction with values that keep it valid, and `cursor.description` and the columns'
charsets give its columns' types."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql
from pymysql.constants import CLIENT
from sqlc_fixup_runtime import expand_slices

from . import typeslock
from .errors import CodegenError
from .placeholders import mysql_placeholders

ServerError = pymysql.MySQLError  # what the server answers when it refuses a statement
Unreachable = pymysql.OperationalError  # no server, or it refuses the user

CODES = {
    0: "decimal", 1: "tinyint", 2: "smallint", 3: "int", 4: "float", 5: "double", 7: "timestamp",
    8: "bigint", 9: "mediumint", 10: "date", 11: "time", 12: "datetime", 13: "year",
    15: "varchar", 16: "bit", 245: "json", 246: "decimal", 247: "varchar", 248: "set",
    249: "blob", 250: "blob", 251: "blob", 252: "blob", 253: "varchar", 254: "char",
}  # fmt: skip
TEXT_CODES = {15, 249, 250, 251, 252, 253, 254}  # str, or bytes in the binary charset


def connect(dsn: str, database: str | None = None) -> pymysql.connections.Connection[Any]:
    """A connection to the server of `dsn` (to `database`, none when not given); a schema
    script runs whole (MULTI_STATEMENTS)."""
    parts = urlsplit(dsn)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=database,
        autocommit=True,
        charset="utf8mb4",
        client_flag=CLIENT.MULTI_STATEMENTS,
    )


def query_args(sql: str, params: list[dict[str, Any]]) -> list[Any]:
    """A value per placeholder that keeps the query valid: NULL, but 0 after LIMIT/OFFSET."""
    args: list[Any] = []
    for match, param in zip(re.finditer(r"(?<!%)%s", sql), params, strict=False):
        before = sql[: match.start()]
        in_limit = re.search(r"\b(LIMIT|OFFSET)\s*$|\bLIMIT\s+%s\s*,\s*$", before, re.I)
        value = 0 if in_limit else None
        args.append([value] if param["column"].get("is_sqlc_slice") else value)
    return args


def compared_column_type(cur: Any, sql: str, position: int) -> str:
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


def column_types(cur: Any, sql: str, args: list[Any]) -> list[str]:
    """The last statement's columns (`sql` run with `args`): the type code, and for text
    codes text or bytes by the charset. The result's metadata carries the charset but
    PyMySQL shows it nowhere public, so the server is asked: CHARSET() of each column of
    the query as a CTE (a type's charset, also on the NULL row of an outer join that found
    none). A statement that cannot be a CTE (INSERT ... RETURNING) reads as text."""
    description = list(cur.description or ())
    columns = [CODES.get(int(d[1]), f"code{int(d[1])}") for d in description]
    text = [i for i, d in enumerate(description) if int(d[1]) in TEXT_CODES]
    charsets: tuple[Any, ...] = ("",) * len(text)
    if text:  # the CTE's column list names the columns by position: repeated names too
        names = ", ".join(f"c{i}" for i in range(len(description)))
        listed = ", ".join(f"CHARSET(probe.c{i})" for i in text)
        body = sql.strip().rstrip(";")
        probe = f"WITH probe ({names}) AS ({body}) SELECT {listed} FROM (SELECT 1) AS one"
        with contextlib.suppress(pymysql.MySQLError):  # not a SELECT: text
            cur.execute(probe + " LEFT JOIN probe ON 1", args)
            charsets = cur.fetchone() or charsets
    for i, charset in zip(text, charsets, strict=True):
        columns[i] = "varbinary" if charset == "binary" else "text"
    return columns


def query_types(dsn: str, database: str, queries: list[dict[str, Any]]) -> typeslock.Found:
    """Every query's types on `database` (the schema applied), and the server's message
    for each query it refuses."""
    out: dict[str, typeslock.LockEntry] = {}
    failures: dict[str, str] = {}
    with connect(dsn, database) as conn:
        conn.autocommit(False)
        for q in queries:
            sql = mysql_placeholders(q["text"])
            params: list[dict[str, Any]] = q.get("params") or []
            columns: list[str] = []
            with conn.cursor() as cur:
                untyped = [p["column"]["type"]["name"] == "any" for p in params]
                param_types = [
                    compared_column_type(cur, sql, i) if any_ else ""
                    for i, any_ in enumerate(untyped)
                ]
                if q["columns"]:
                    expanded, flat = expand_slices(sql, query_args(sql, params))
                    try:
                        cur.execute(expanded, flat)
                        columns = column_types(cur, expanded, flat)
                    except pymysql.MySQLError as exc:
                        failures[q["name"]] = typeslock.refusal(q["name"], exc)
                        continue
                    finally:
                        conn.rollback()
            out[q["name"]] = typeslock.LockEntry(
                typeslock.sql_hash(q["text"]), columns, param_types if any(param_types) else []
            )
    return out, failures


def apply_schema(dsn: str, database: str, files: list[Path]) -> None:
    """Run the schema files (the up-migrations, in order) on `database`, each whole; one of
    comments only (a fresh migration) changes nothing and is not sent."""
    with connect(dsn, database) as conn, conn.cursor() as cur:
        for file in files:
            script = typeslock.up_section(file.read_text())
            if not typeslock.has_statement(script, mysql=True):
                continue
            cur.execute(script)
            while cur.nextset():
                pass


def created_databases(files: list[Path]) -> list[str]:
    """The databases a schema creates (CREATE DATABASE/SCHEMA): dropped after use."""
    pattern = r"\bCREATE\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?"
    found: list[str] = []
    for file in files:
        found += re.findall(pattern, typeslock.up_section(file.read_text()), re.I)
    return sorted(set(found))


@contextlib.contextmanager
def throwaway(dsn: str, name: str, side: list[str]) -> Iterator[None]:
    """Database `name` for one run, dropped afterwards, also on failure. Databases the
    schema creates beside it (`side`) are server-wide: one run at a time holds each name
    (GET_LOCK) and they are dropped afterwards too."""
    with connect(dsn) as conn, conn.cursor() as cur:
        for other in side:
            cur.execute("SELECT GET_LOCK(%s, 120)", (f"sqlc_gen_fixup_{other}",))
            if cur.fetchone() != (1,):
                raise CodegenError(f"another types run holds database {other!r} for 120 s")
        try:
            for other in side:
                cur.execute(f"DROP DATABASE IF EXISTS `{other}`")
            cur.execute(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            yield
        finally:
            for other in [name, *side]:
                cur.execute(f"DROP DATABASE IF EXISTS `{other}`")
            for other in side:
                cur.execute("SELECT RELEASE_LOCK(%s)", (f"sqlc_gen_fixup_{other}",))
