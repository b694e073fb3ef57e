"""Drive sqlc for the six databases: generate, check, types lock, vet.

Usage: python -m tools.sqlc {generate,check,types,vet} [DB ...]   (no DB: all of them)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import filecmp
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pymysql
import sqlparse
import yaml

from codegen import typeslock
from codegen.errors import CodegenError
from codegen.plan import Planner, mysql_placeholders, pg_slices, warnings_file
from codegen.pytypes import TypeMapper, parse_overrides
from codegen.request import Request, qualified
from lib.db.runtime import expand_slices
from tools.databases import (
    DATABASES,
    MYSQL_DEFAULT,
    PG_DEFAULT,
    database_name,
    engine_of,
    get_database,
    with_database,
)
from tools.dbadmin import create_database, drop_database, mysql_connect, psycopg_dsn

ROOT = Path(__file__).resolve().parent.parent
SQLC = Path(sys.executable).with_name("sqlc")


class SqlcError(Exception):
    pass


def sql_dir(db: str, root: Path = ROOT) -> Path:
    """sql/<db> of a known db, or any directory holding a sqlc.yaml (test schemas)."""
    if "/" in db:
        return (root / db).resolve() if root != ROOT else Path(db).resolve()
    return root / "sql" / get_database(db).name


def engine_of_config(db: str) -> str:
    config = yaml.safe_load((sql_dir(db) / "sqlc.yaml").read_text())
    return str(config["sql"][0]["engine"])


def server_dsn(db: str) -> str:
    """The server a throwaway database for `db` goes on."""
    if "/" not in db:
        return get_database(db).dsn()
    if engine_of_config(db) == "postgresql":
        return os.environ.get("TEST_PG_DSN") or f"{PG_DEFAULT}/postgres"
    return os.environ.get("TEST_MYSQL_DSN") or f"{MYSQL_DEFAULT}/mysql"


def run_sqlc(config_dir: Path, *, strict: bool = False, config: str = "sqlc.yaml") -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    if strict:
        env["FIXUP_SQLC_STRICT"] = "1"
    with subprocess.Popen(
        [str(SQLC), "generate", "-f", config],
        cwd=config_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        stdout, stderr = proc.communicate()
    warnings = warnings_file(proc.pid)
    if warnings.exists():
        if proc.returncode == 0:
            sys.stderr.write(warnings.read_text())
        warnings.unlink()
    if proc.returncode != 0:
        rel = config_dir.relative_to(config_dir.parent.parent)
        raise SqlcError(f"sqlc failed in {rel}:\n{(stderr or stdout).strip()}")


def generate(db: str) -> None:
    """Refresh the types lock when the schema or a query changed (needs the server; fails
    loudly without it), then generate."""
    request = request_json(db)
    if not lock_is_current(db, request):
        print(f"sqlc: {db}: types lock is stale, asking the server")
        types(db, request)
    run_sqlc(sql_dir(db))
    print(f"sqlc: generated {db}")


@contextlib.contextmanager
def temp_config(db: str, edit: Callable[[dict[str, Any], str], None]) -> Iterator[str]:
    """A sibling of sql/<db>/sqlc.yaml changed by `edit(config, tmp_rel)`; yields its name.

    Output goes to a temporary directory (`tmp_rel`, relative to the config), so the
    real generated files are untouched.
    """
    base = sql_dir(db)
    config = yaml.safe_load((base / "sqlc.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        edit(config, os.path.relpath(tmp, base))
        name = f".sqlc-{os.getpid()}.yaml"
        (base / name).write_text(yaml.safe_dump(config))
        try:
            yield name
        finally:
            (base / name).unlink()


def request_json(db: str) -> dict[str, Any]:
    """sqlc's GenerateRequest for `db`, through its built-in `gen: json`."""

    def to_json(config: dict[str, Any], out: str) -> None:
        config.pop("plugins", None)
        for entry in config["sql"]:
            entry.pop("codegen", None)
            entry["gen"] = {"json": {"out": out}}

    with temp_config(db, to_json) as name:
        run_sqlc(sql_dir(db), config=name)
        out = yaml.safe_load((sql_dir(db) / name).read_text())["sql"][0]["gen"]["json"]["out"]
        data: dict[str, Any] = json.loads((sql_dir(db) / out / "codegen_request.json").read_text())
        return data


def lock_path(db: str) -> Path:
    return sql_dir(db) / "types.lock.json"


def schema_files(db: str, request: dict[str, Any]) -> list[Path]:
    return [p.resolve() for p in typeslock.schema_paths(request["settings"]["schema"], sql_dir(db))]


# --- server types -----------------------------------------------------------------------

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


class QueryFailures(SqlcError):
    """Some queries could not be typed by the server; the others are locked."""


def _failure(q: dict[str, Any], exc: Exception) -> str:
    return f"{q['filename']}: query {q['name']}: server says: {str(exc).strip()}"


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


async def pg_types(
    dsn: str, queries: list[dict[str, Any]], composites: typeslock.Composites | None = None
) -> tuple[dict[str, typeslock.LockEntry], list[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        out, failures = {}, []
        composites = {} if composites is None else composites
        for q in queries:
            slices = [
                p["number"] for p in q.get("params") or [] if p["column"].get("is_sqlc_slice")
            ]
            try:
                stmt = await conn.prepare(pg_slices(q["text"], slices, q["name"]))
            except (asyncpg.PostgresError, CodegenError) as exc:
                failures.append(_failure(q, exc))
                continue
            used = [a.type for a in stmt.get_attributes()] + list(stmt.get_parameters())
            for t in used:
                if t.kind == "composite":
                    await pg_composites(conn, t.oid, _pg_name(t), composites)
            out[q["name"]] = typeslock.LockEntry(
                typeslock.sql_hash(q["text"]),
                [_pg_name(a.type) for a in stmt.get_attributes()],
                [_pg_name(p) for p in stmt.get_parameters()],
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
) -> tuple[dict[str, typeslock.LockEntry], list[str]]:
    """aiomysql has no server-side prepare: run each query in a rolled-back transaction with
    values that keep it valid, read `cursor.description` and the fields' charsets."""
    out, failures = {}, []
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
                        failures.append(_failure(q, exc))
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
) -> tuple[dict[str, typeslock.LockEntry], list[str]]:
    """Every query's types from a throwaway database, and one message per failing query."""
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
                return asyncio.run(pg_types(server, request["queries"], composites))
            return mysql_types(server, request["queries"])
    finally:
        drop_database(server)


def types(db: str, request: dict[str, Any] | None = None) -> None:
    """Write sql/<db>/types.lock.json; a failing query is named (the others are locked)."""
    request = request or request_json(db)
    composites: typeslock.Composites = {}
    entries, failures = server_types(db, request, composites)
    schema = typeslock.schema_hash(schema_files(db, request))
    lock_path(db).write_text(typeslock.dump(schema, entries, composites))
    print(f"sqlc-types: {db}: {len(entries)} queries -> {lock_path(db)}")
    if failures:
        raise QueryFailures(f"{db}: {len(failures)} queries not typed:\n" + "\n".join(failures))


def lock_is_current(db: str, request: dict[str, Any]) -> bool:
    schema, entries = typeslock.load(lock_path(db))
    if schema != typeslock.schema_hash(schema_files(db, request)):
        return False
    return all(
        q["name"] in entries and entries[q["name"]].sql_sha256 == typeslock.sql_hash(q["text"])
        for q in request["queries"]
    )


def vet(db: str) -> None:
    """PREPARE every query on a real server and compare its types with the generated ones."""
    raw = request_json(db)
    entries, failures = server_types(db, raw)
    if failures:
        raise QueryFailures("\n".join(failures))
    request = Request.parse({**raw, "plugin_options": ""})
    options = yaml.safe_load((sql_dir(db) / "sqlc.yaml").read_text())["sql"][0]["codegen"][0]
    mapper = TypeMapper(request, parse_overrides(options.get("options", {}).get("overrides", [])))
    planner = Planner(request, mapper, entries)
    problems = []
    refused = 0
    for q in request.queries:
        try:
            plan = planner.plan(q)
        except CodegenError:  # not generated (make sqlc names it): nothing to compare
            refused += 1
            continue
        server = entries[q.name]
        flat_types = [
            f.type.annotation.removesuffix(" | None")
            for f in plan.row_fields
            if not hasattr(f, "cls")
        ]
        for i, (col, server_type) in enumerate(zip(q.columns, server.columns, strict=False)):
            if col.embed_table or i >= len(flat_types):
                continue
            base, is_array = server_type.removesuffix("[]"), server_type.endswith("[]")
            expected = mapper.scalar(col, base)
            if expected is None:
                continue
            want = f"list[{expected.annotation}]" if is_array else expected.annotation
            got = flat_types[i]
            if want != got and not (col.type.name in mapper.enums or got in ("bool", "JSON")):
                where = f"{q.filename}: {q.name}: column {col.name}"
                problems.append(f"{where}: generated {got}, server {want}")
    if problems:
        raise SqlcError("sqlc-vet found mismatches:\n" + "\n".join(problems))
    checked = len(request.queries) - refused
    print(f"sqlc-vet: {db}: {checked} generated queries prepared on the server, types agree")


def check(db: str) -> None:
    """Fail when the generated code or the types lock is stale (strict: warnings fail)."""
    outs: dict[str, str] = {}

    def to_temp(config: dict[str, Any], out: str) -> None:
        outs["real"] = config["sql"][0]["codegen"][0]["out"]
        config["sql"][0]["codegen"][0]["out"] = outs["fresh"] = out

    with temp_config(db, to_temp) as name:
        run_sqlc(sql_dir(db), strict=True, config=name)
        stale = _differences(sql_dir(db) / outs["fresh"], sql_dir(db) / outs["real"])
    if stale:
        names = ", ".join(stale)
        raise SqlcError(f"{db}: generated code is stale ({names}); run make sqlc db={db}")
    print(f"sqlc-check: {db}: generated code and types lock are current")


def _differences(fresh: Path, current: Path) -> list[str]:
    if not current.exists():
        return [str(current)]
    cmp = filecmp.dircmp(fresh, current, ignore=["__pycache__"])
    names = cmp.left_only + cmp.right_only + cmp.diff_files
    for name in cmp.common_files:
        if (fresh / name).read_bytes() != (current / name).read_bytes():
            names.append(name)
    return sorted(set(names))


COMMANDS = {"generate": generate, "check": check, "types": types, "vet": vet}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.sqlc", description=__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("dbs", nargs="*", help="default: every db with a sql/<db>/sqlc.yaml")
    args = parser.parse_args(argv)
    dbs = args.dbs or [db for db in DATABASES if (sql_dir(db) / "sqlc.yaml").exists()]
    db = ""
    try:
        for db in dbs:
            sql_dir(db)  # an unknown db name fails here, naming the known ones
            COMMANDS[args.command](db)
    except (SqlcError, ValueError) as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # one line, not a traceback
        print(f"{args.command}: {db}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
