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
from codegen.plan import Planner
from codegen.pytypes import TypeMapper, parse_overrides
from codegen.request import Request
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
    proc = subprocess.run(
        [str(SQLC), "generate", "-f", config],
        cwd=config_dir,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    sys.stderr.write(proc.stderr if proc.returncode == 0 else "")
    if proc.returncode != 0:
        rel = config_dir.relative_to(config_dir.parent.parent)
        raise SqlcError(f"sqlc failed in {rel}:\n{(proc.stderr or proc.stdout).strip()}")


def generate(db: str) -> None:
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
    return [(sql_dir(db) / s).resolve() for s in request["settings"]["schema"]]


# --- server types -----------------------------------------------------------------------

MYSQL_CODES = {
    0: "decimal", 1: "tinyint", 2: "smallint", 3: "int", 4: "float", 5: "double", 7: "timestamp",
    8: "bigint", 9: "mediumint", 10: "date", 11: "time", 12: "datetime", 13: "year",
    15: "varchar", 16: "bit", 245: "json", 246: "decimal", 247: "varchar", 248: "set",
    249: "blob", 250: "blob", 251: "blob", 252: "blob", 253: "varchar", 254: "char",
}  # fmt: skip


def _pg_name(t: Any) -> str:
    name = str(t.name)
    return name[1:] + "[]" if t.kind == "array" and name.startswith("_") else name


async def pg_types(dsn: str, queries: list[dict[str, Any]]) -> dict[str, typeslock.LockEntry]:
    conn = await asyncpg.connect(dsn)
    try:
        out = {}
        for q in queries:
            try:
                stmt = await conn.prepare(q["text"])
            except asyncpg.PostgresError as exc:
                raise SqlcError(f"{q['filename']}: query {q['name']}: server says: {exc}") from exc
            out[q["name"]] = typeslock.LockEntry(
                typeslock.sql_hash(q["text"]),
                [_pg_name(a.type) for a in stmt.get_attributes()],
                [_pg_name(p) for p in stmt.get_parameters()],
            )
        return out
    finally:
        await conn.close()


def mysql_types(dsn: str, queries: list[dict[str, Any]]) -> dict[str, typeslock.LockEntry]:
    """aiomysql has no server-side prepare: run with NULLs in a rolled-back transaction."""
    from codegen.plan import mysql_placeholders
    from lib.db.runtime import expand_slices

    out = {}
    with mysql_connect(dsn, database=database_name(dsn)) as conn:
        conn.autocommit(False)
        for q in queries:
            sql = mysql_placeholders(q["text"])
            args = [[None] if p["column"]["is_sqlc_slice"] else None for p in q["params"]]
            sql, flat = expand_slices(sql, args)
            columns: list[str] = []
            if q["columns"]:
                with conn.cursor() as cur:
                    try:
                        cur.execute(sql, flat)
                    except pymysql.MySQLError as exc:
                        where = f"{q['filename']}: query {q['name']}"
                        raise SqlcError(f"{where}: server says: {exc}") from exc
                    finally:
                        conn.rollback()
                    for d in cur.description or ():
                        columns.append(MYSQL_CODES.get(int(d[1]), f"code{d[1]}"))
            out[q["name"]] = typeslock.LockEntry(typeslock.sql_hash(q["text"]), columns, [])
    return out


def apply_schema(dsn: str, files: list[Path]) -> None:
    """Run the schema files (the up-migrations, in order) on a throwaway database."""
    if engine_of(dsn) == "postgresql":
        with psycopg.connect(psycopg_dsn(dsn), autocommit=True) as pg:
            for file in files:
                pg.execute(file.read_text().encode())
        return
    with mysql_connect(dsn, database=database_name(dsn)) as my, my.cursor() as cur:
        for file in files:
            for statement in sqlparse.split(file.read_text()):
                if sqlparse.format(statement, strip_comments=True).strip():
                    cur.execute(statement)


def server_types(db: str, request: dict[str, Any]) -> dict[str, typeslock.LockEntry]:
    label = Path(db).name if "/" in db else db
    server = with_database(server_dsn(db), f"fixup_sqlctypes_{label}_{os.getpid()}")
    create_database(server)
    try:
        apply_schema(server, schema_files(db, request))
        if engine_of(server) == "postgresql":
            return asyncio.run(pg_types(server, request["queries"]))
        return mysql_types(server, request["queries"])
    finally:
        drop_database(server)


def types(db: str) -> None:
    request = request_json(db)
    entries = server_types(db, request)
    schema = typeslock.schema_hash(schema_files(db, request))
    lock_path(db).write_text(typeslock.dump(schema, entries))
    print(f"sqlc-types: {db}: {len(entries)} queries -> {lock_path(db)}")


def vet(db: str) -> None:
    """PREPARE every query on a real server and compare its types with the generated ones."""
    raw = request_json(db)
    entries = server_types(db, raw)
    request = Request.parse({**raw, "plugin_options": ""})
    options = yaml.safe_load((sql_dir(db) / "sqlc.yaml").read_text())["sql"][0]["codegen"][0]
    mapper = TypeMapper(request, parse_overrides(options.get("options", {}).get("overrides", [])))
    planner = Planner(request, mapper, entries)
    problems = []
    for q in request.queries:
        plan = planner.plan(q)
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
            if want != got and not (col.type.name in mapper.enums or got == "bool"):
                where = f"{q.filename}: {q.name}: column {col.name}"
                problems.append(f"{where}: generated {got}, server {want}")
    if problems:
        raise SqlcError("sqlc-vet found mismatches:\n" + "\n".join(problems))
    print(f"sqlc-vet: {db}: {len(request.queries)} queries prepared on the server, types agree")


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
    try:
        for db in dbs:
            sql_dir(db)  # an unknown db name fails here, naming the known ones
            COMMANDS[args.command](db)
    except (SqlcError, ValueError) as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
