"""`sqlc-gen-fixup types --dsn URL [--dsn URL] [sqlc.yaml]`: the types lock the generator
reads, from the user's own server.

For each PostgreSQL or MySQL entry of the config, sqlc's request (the queries as sqlc
parsed them, through sqlc's built-in `gen: json`) is taken, a throwaway database is made on
the server of the entry's engine's `--dsn`, the schema applied, every query prepared
(PostgreSQL) or run in a rolled-back transaction (MySQL) and its parameters' and columns'
types written to the entry's lock (the option `types_lock`, `types.lock.json` beside the
config by default); the database is dropped. A query the server refuses is kept in the lock
with the server's message (`sqlc generate` fails naming it) and fails the command, named.
The drivers are the extras `[postgresql]` (asyncpg) and `[mysql]` (PyMySQL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from . import typeslock
from .errors import CodegenError
from .sort_variants import expand

LOCK_COMMENT = "written by `sqlc-gen-fixup types`: the server's types per query; do not edit"
SCHEMES = {"postgresql": ("postgresql", "postgres"), "mysql": ("mysql", "mariadb")}


def schema_files(request: dict[str, Any], base: Path) -> list[Path]:
    return [p.resolve() for p in typeslock.schema_paths(request["settings"]["schema"], base)]


def where(request: dict[str, Any], base: Path, query: str) -> str:
    """`queries/x.sql:LINE` of a query's `-- name:` line, relative to the config."""
    pattern = re.compile(rf"^--\s*name:\s*{re.escape(query)}\s", re.M)
    for file in typeslock.schema_paths(request["settings"]["queries"], base):
        text = file.read_text()
        if match := pattern.search(text):
            return f"{os.path.relpath(file, base)}:{text.count(chr(10), 0, match.start()) + 1}"
    return query


def server(dsn: str) -> str:
    """Where a DSN points, without its user and password (for messages)."""
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or ''}".rstrip(":")


def server_types(
    request: dict[str, Any], dsn: str, base: Path, composites: typeslock.Composites
) -> typeslock.Found:
    """Every query's types from a throwaway database on the server of `dsn`, and the
    message of each refused one (`queries/x.sql:LINE: query Name: server says: ...`)."""
    engine = request["settings"]["engine"]
    files = schema_files(request, base)
    name = f"sqlc_fixup_types_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        if engine == "postgresql":
            entries, failures = asyncio.run(_pg_types(request, dsn, name, files, composites))
        else:
            entries, failures = _mysql_types(request, dsn, name, files)
    except ImportError as exc:
        raise CodegenError(
            f"the types step on {engine} needs its driver: "
            f"pip install 'sqlc-gen-fixup[{engine}]' ({exc})"
        ) from exc
    except OSError as exc:
        raise CodegenError(f"cannot reach the {engine} server at {server(dsn)}: {exc}") from exc
    throwaway = f"{name}."  # MariaDB names it in `FUNCTION db.f does not exist`
    return entries, {
        query: f"{where(request, base, query)}: {message.replace(throwaway, '')}"
        for query, message in failures.items()
    }


async def _pg_types(
    request: dict[str, Any], dsn: str, name: str, files: list[Path], found: typeslock.Composites
) -> typeslock.Found:
    from . import types_pg  # the [postgresql] extra

    dsn = "postgresql://" + dsn.split("://", 1)[1]  # asyncpg's scheme, not `postgresql+x`
    parts = urlsplit(dsn)
    database = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    try:
        await types_pg.create_database(dsn, name)
    except types_pg.ServerError as exc:
        raise CodegenError(f"cannot create a database at {server(dsn)}: {exc}") from exc
    try:
        try:
            await types_pg.apply_schema(database, files)
        except types_pg.ServerError as exc:
            raise CodegenError(f"the schema does not apply: {exc}") from exc
        return await types_pg.query_types(database, request["queries"], found)
    finally:
        await types_pg.drop_database(dsn, name)


def _mysql_types(
    request: dict[str, Any], dsn: str, name: str, files: list[Path]
) -> typeslock.Found:
    from . import types_mysql  # the [mysql] extra

    try:
        with types_mysql.throwaway(dsn, name, types_mysql.created_databases(files)):
            try:
                types_mysql.apply_schema(dsn, name, files)
            except types_mysql.ServerError as exc:
                raise CodegenError(f"the schema does not apply: {exc}") from exc
            return types_mysql.query_types(dsn, name, request["queries"])
    except types_mysql.Unreachable as exc:
        raise CodegenError(f"cannot use the mysql server at {server(dsn)}: {exc}") from exc


def write_lock(
    request: dict[str, Any], dsn: str, base: Path, lock: Path, comment: str = LOCK_COMMENT
) -> list[str]:
    """Write `lock` for `request` (paths relative to `base`); the refused queries' messages."""
    composites: typeslock.Composites = {}
    entries, failures = server_types(request, dsn, base, composites)
    hashes = {q["name"]: typeslock.sql_hash(q["text"]) for q in request["queries"]}
    refused = {name: (hashes[name], message) for name, message in failures.items()}
    schema = typeslock.schema_hash(schema_files(request, base))
    lock.write_text(typeslock.dump(schema, entries, composites, refused, comment))
    return sorted(failures.values())


def is_current(request: dict[str, Any], base: Path, lock: Path) -> bool:
    """The lock was written for this schema and every query's current text, and holds no
    query that is gone (a removed query's entry is rewritten away, not kept for ever)."""
    schema, entries = typeslock.load(lock)
    if schema != typeslock.schema_hash(schema_files(request, base)):
        return False
    known = {name: e.sql_sha256 for name, e in entries.items()}
    known |= {name: sha for name, (sha, _) in typeslock.load_refused(lock).items()}
    return known == {q["name"]: typeslock.sql_hash(q["text"]) for q in request["queries"]}


def requests(config: Path, sqlc: str) -> list[dict[str, Any]]:
    """sqlc's request of every `sql` entry of `config` (as the plugin sees it: a sorted
    query's variants expanded), through sqlc's built-in `gen: json`."""
    raw = yaml.safe_load(config.read_text())
    raw.pop("plugins", None)
    with tempfile.TemporaryDirectory() as tmp:
        for index, entry in enumerate(raw.get("sql", [])):
            entry.pop("codegen", None)
            entry["gen"] = {"json": {"out": os.path.relpath(Path(tmp) / str(index), config.parent)}}
        temp = config.parent / f".sqlc-gen-fixup-types-{os.getpid()}.json"
        temp.write_text(json.dumps(raw))
        try:
            proc = subprocess.run(
                [sqlc, "generate", "-f", temp.name],
                cwd=config.parent,
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            temp.unlink()
        if proc.returncode != 0:
            said = (proc.stderr or proc.stdout).strip()
            raise CodegenError(f"sqlc failed on {config.name}:\n{said}")
        return [
            expand(json.loads((Path(tmp) / str(i) / "codegen_request.json").read_text()))
            for i in range(len(raw.get("sql", [])))
        ]


def lock_names(entry: dict[str, Any]) -> list[str]:
    """The locks an entry's codegen reads (`types_lock`, `types.lock.json` by default)."""
    names = {
        str((codegen.get("options") or {}).get("types_lock", "types.lock.json"))
        for codegen in entry.get("codegen") or [{}]
    }
    return sorted(names)


def pick(dsns: list[str], engine: str) -> str:
    for dsn in dsns:
        if urlsplit(dsn).scheme.split("+")[0] in SCHEMES[engine]:
            return dsn
    schemes = " or ".join(f"{s}://" for s in SCHEMES[engine])
    raise CodegenError(f"a {engine} entry needs a --dsn {schemes}... of a server to ask")


def run(config: Path, dsns: list[str], sqlc: str) -> list[str]:
    """Write every PostgreSQL and MySQL entry's lock; the refused queries' messages."""
    entries = yaml.safe_load(config.read_text()).get("sql", [])
    found = requests(config, sqlc) if any(e["engine"] != "sqlite" for e in entries) else []
    refused: list[str] = []
    for entry, request in zip(entries, found, strict=False):
        if entry["engine"] == "sqlite":
            print("sqlc-gen-fixup types: SQLite needs no types lock (it is asked in memory)")
            continue
        dsn = pick(dsns, entry["engine"])
        for name in lock_names(entry):
            lock = config.parent / name
            refused += write_lock(request, dsn, config.parent, lock)
            print(f"sqlc-gen-fixup types: {len(request['queries'])} queries -> {lock}")
    return refused


DSN_VARIABLE = "SQLC_FIXUP_DSN"  # DSNs out of the process list


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sqlc-gen-fixup types",
        description="Ask the server for every query's types and write the types lock.",
    )
    parser.add_argument(
        "--dsn",
        action="append",
        default=[],
        help="postgresql://... or mysql://... of a server where a throwaway database may be "
        "created (the user needs CREATEDB / CREATE); one per engine the config uses. With a "
        f"password, give it in {DSN_VARIABLE} instead (space-separated): a command line is "
        "visible to every user of the machine",
    )
    parser.add_argument("--sqlc", default="sqlc", help="the sqlc binary (default: sqlc on PATH)")
    parser.add_argument("config", nargs="?", default="sqlc.yaml", type=Path)
    args = parser.parse_args(argv)
    sqlc = shutil.which(args.sqlc) or args.sqlc
    try:
        dsns = [*args.dsn, *os.environ.get(DSN_VARIABLE, "").split()]
        refused = run(args.config.resolve(), dsns, sqlc)
    except (CodegenError, OSError) as exc:
        print(f"sqlc-gen-fixup types: {exc}", file=sys.stderr)
        return 1
    if refused:
        print(
            f"sqlc-gen-fixup types: {len(refused)} queries refused by the server:\n"
            + "\n".join(refused),
            file=sys.stderr,
        )
        return 1
    return 0
