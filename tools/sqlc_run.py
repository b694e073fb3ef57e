"""Running the sqlc binary for tools/sqlc.py: configs, the request, files sqlc rejects."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from codegen import types_command
from codegen.errors import CodegenError
from tools.local.databases import MYSQL_DEFAULT, PG_DEFAULT, get_database

ROOT = Path(__file__).resolve().parent.parent
SQLC = Path(sys.executable).with_name("sqlc")
# sqlc's own error lines: `queries/items.sql:2:12: column "lowest" does not exist`
SQLC_ERROR = re.compile(r"^(?P<file>[^\s:]+\.sql):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$", re.M)


class SqlcError(Exception):
    pass


class QueryFailures(SqlcError):
    """Some queries or query files were refused (named); the others are generated."""


def sql_dir(db: str, root: Path = ROOT) -> Path:
    """sql/<db> of a known db, or any directory holding a sqlc.yaml (test schemas)."""
    if "/" in db:
        return (root / db).resolve() if root != ROOT else Path(db).resolve()
    return root / "sql" / get_database(db).name


def load_config(db: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((sql_dir(db) / "sqlc.yaml").read_text())
    return config


def engine_of_config(db: str) -> str:
    return str(load_config(db)["sql"][0]["engine"])


def server_dsn(db: str) -> str:
    """The server a throwaway database for `db` goes on."""
    if "/" not in db:
        return get_database(db).dsn()
    if engine_of_config(db) == "postgresql":
        return os.environ.get("TEST_PG_DSN") or f"{PG_DEFAULT}/postgres"
    return os.environ.get("TEST_MYSQL_DSN") or f"{MYSQL_DEFAULT}/mysql"


def run_sqlc(config_dir: Path, *, config: str = "sqlc.yaml") -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    proc = subprocess.run(
        [str(SQLC), "generate", "-f", config],
        cwd=config_dir,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    stdout, stderr = proc.stdout, proc.stderr
    if proc.returncode != 0:
        rel = config_dir.relative_to(config_dir.parent.parent)
        raise SqlcError(f"sqlc failed in {rel}:\n{(stderr or stdout).strip()}")


@contextlib.contextmanager
def temp_config(db: str, edit: Callable[[dict[str, Any], str], None]) -> Iterator[str]:
    """A sibling of sql/<db>/sqlc.yaml changed by `edit(config, tmp_rel)`; yields its name.

    Output goes to a temporary directory (`tmp_rel`, relative to the config), so the
    real generated files are untouched unless `edit` keeps the real `out`.
    """
    base = sql_dir(db)
    config = load_config(db)
    with tempfile.TemporaryDirectory() as tmp:
        edit(config, os.path.relpath(tmp, base))
        name = f".sqlc-{os.getpid()}.yaml"
        (base / name).write_text(yaml.safe_dump(config))
        try:
            yield name
        finally:
            (base / name).unlink()


def query_files(db: str) -> list[str]:
    """The config's query files, relative to it (a directory gives its *.sql)."""
    base = sql_dir(db)
    entries = load_config(db)["sql"][0]["queries"]
    files: list[str] = []
    for entry in [entries] if isinstance(entries, str) else entries:
        path = base / entry
        found = sorted(path.glob("*.sql")) if path.is_dir() else [path]
        files += [os.path.relpath(f, base) for f in found]
    return files


def config_without(db: str, rejected: dict[str, str]) -> contextlib.AbstractContextManager[str]:
    """The name of a config reading every query file but the `rejected` ones: sqlc.yaml
    itself when none is (`temp_config`'s otherwise)."""

    def without(config: dict[str, Any], _tmp: str) -> None:
        kept = [f for f in query_files(db) if os.path.normpath(f) not in rejected]
        config["sql"][0]["queries"] = kept

    return temp_config(db, without) if rejected else contextlib.nullcontext("sqlc.yaml")


def hint(db: str, file: str, line: int, message: str) -> str:
    """sqlc's message, with the work-around where one is known."""
    text = (sql_dir(db) / file).read_text().splitlines()
    start = max((i for i in range(line) if "-- name:" in text[i]), default=0)
    query = "\n".join(text[start:line]).lower()
    if "does not exist" in message and re.search(r"\b(least|greatest)\s*\(", query):
        return (
            f"{message} (sqlc cannot type a parameter inside LEAST/GREATEST and loses the "
            f"column; cast it, e.g. least(price, sqlc.arg(cap)::numeric))"
        )
    return message


def rejected_files(db: str, error: SqlcError) -> dict[str, str]:
    """The query files sqlc's error names, each with its `file:line: message [hint]`."""
    found: dict[str, str] = {}
    known = {os.path.normpath(f) for f in query_files(db)}
    for m in SQLC_ERROR.finditer(str(error)):
        file = os.path.normpath(m["file"])
        if file in known and file not in found:
            message = hint(db, file, int(m["line"]), m["msg"])
            found[file] = f"{file}:{m['line']}: sqlc says: {message}"
    return found


def request_json(db: str, rejected: dict[str, str] | None = None) -> dict[str, Any]:
    """sqlc's GenerateRequest for `db` (without the `rejected` files) as the plugin sees it:
    the types step's own `types_command.requests` (`gen: json`, a sorted query's variants)."""
    with config_without(db, rejected or {}) as name:
        try:
            return types_command.requests(sql_dir(db) / name, str(SQLC))[0]
        except CodegenError as exc:
            raise SqlcError(f"{db}: {exc}") from exc


def request_without_rejected(db: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The request, and the files sqlc itself rejects (left out, so the others generate)."""
    try:
        return request_json(db), {}
    except SqlcError as exc:
        rejected = rejected_files(db, exc)
        if not rejected:
            raise
    return request_json(db, rejected), rejected
