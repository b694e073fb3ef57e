"""yoyo migrations for the six databases: up, down, status, new.

Usage: python -m tools.migrations.migrate {up,down,status,new} DB [--steps N | --all] [--name NAME]

Every session gets MIGRATE_LOCK_TIMEOUT and MIGRATE_STATEMENT_TIMEOUT (ADR 0018,
docs/migrations.md): a migration that cannot get its lock fails fast and can be run again.
up and down hold the database's advisory lock `migrate` (tools/local/locks.py), inside it
yoyo's lock row, which a killed run leaves behind and the next one removes; `new` holds
var/locks/migrate-new.lock.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml
from yoyo import get_backend, read_migrations
from yoyo.backends import DatabaseBackend
from yoyo.migrations import Migration

from lib.db.connecting import engine_of
from tools.local.databases import DATABASES, database_name, get_database
from tools.local.dbadmin import create_database, database_exists
from tools.local.local_servers import DEFAULT_PORTS
from tools.local.locks import database_lock, env_seconds, file_lock

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "migrations"
TEMPLATES = Path(__file__).resolve().parent / "templates"
CLIENT_CHECK_MS = 1000  # PostgreSQL 14+: how often a running statement checks its client
ENGINE_NAMES = {"postgresql": "PostgreSQL", "mysql": "MySQL"}
# errors a second run may not meet: timeouts, deadlocks, serialization, a lost connection
# (PostgreSQL classes 08 and 57P, MySQL's client codes 2000-2999); any other is the
# migration's or the database's own and needs a fix before a re-run
RETRYABLE = {"55P03", "57014", "40P01", "40001", 1205, 1969, 1213}


def yoyo_url(dsn: str, args: dict[str, str] | None = None) -> str:
    """yoyo's scheme for our DSNs: psycopg 3 for PostgreSQL, PyMySQL for MySQL/MariaDB;
    `args` become query parameters, which yoyo hands to the driver's connect()."""
    parts = urlsplit(dsn)
    scheme = "postgresql+psycopg" if engine_of(dsn) == "postgresql" else "mysql"
    query = urlencode([*parse_qsl(parts.query), *(args or {}).items()])
    return urlunsplit((scheme, parts.netloc, parts.path, query, parts.fragment))


def migrations_dir(db: str) -> Path:
    return MIGRATIONS / get_database(db).name


def where(dsn: str) -> str:
    """`host:port/dbname` of a DSN, for messages: never its user or password."""
    parts = urlsplit(dsn)
    port = parts.port or DEFAULT_PORTS[engine_of(dsn)]
    return f"{parts.hostname or 'localhost'}:{port}/{database_name(dsn)}"


class EngineMismatchError(ValueError):
    """The DSN points at a server of the other engine than the db's migrations are for."""


def checked_dsn(db: str, dsn: str | None = None) -> str:
    """The DSN of `db` (`<DB>_DATABASE_URL` when not given), refused when its server is of
    another engine than the db's migrations: run there, they would fail half way, or a
    status would list them all as pending."""
    database = get_database(db)
    named = "the DSN" if dsn else database.env_var
    dsn = dsn or database.dsn()
    engine = engine_of(dsn)
    if engine != database.engine:
        raise EngineMismatchError(
            f"{db}'s migrations are {ENGINE_NAMES[database.engine]}; {named} points at a "
            f"{ENGINE_NAMES[engine]} server ({where(dsn)}): give it a "
            f"{database.engine}:// URL"
        )
    return dsn


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long one migration statement may wait for a lock, and may run at all (seconds)."""

    lock: float
    statement: float

    @classmethod
    def from_env(cls) -> Timeouts:
        return cls(
            env_seconds("MIGRATE_LOCK_TIMEOUT", 2.0),
            env_seconds("MIGRATE_STATEMENT_TIMEOUT", 60.0),
        )

    def connect_args(self, engine: str) -> dict[str, str]:
        """Driver arguments that give every migration connection these limits. yoyo opens
        a new connection for each migration, so a SET on its first one would not reach it."""
        if engine == "postgresql":
            ms = round(self.lock * 1000), round(self.statement * 1000)
            # a run killed mid-statement: the server notices its client gone within a
            # second and rolls the migration back, instead of holding its locks until
            # the statement ends (the next run would time out on them)
            return {
                "options": f"-c lock_timeout={ms[0]}ms -c statement_timeout={ms[1]}ms"
                f" -c client_connection_check_interval={CLIENT_CHECK_MS}"
            }
        # MariaDB: metadata locks (an ALTER's) and row locks wait whole seconds
        whole = max(1, math.ceil(self.lock))
        return {
            "init_command": f"SET SESSION lock_wait_timeout = {whole}, "
            f"innodb_lock_wait_timeout = {whole}, max_statement_time = {self.statement:g}"
        }


class MigrationFailedError(RuntimeError):
    """One migration failed; the message names it and says whether a re-run is safe."""


@contextlib.contextmanager
def backend_for(
    dsn: str, timeouts: Timeouts | None = None, *, create: bool = True
) -> Iterator[DatabaseBackend]:
    """yoyo's backend, its connection closed on the way out: left open, a read's
    transaction keeps MariaDB's metadata locks, and a DROP DATABASE of the db waits on it.
    The database is created when missing (`create`)."""
    if create:
        create_database(dsn)
    limits = (timeouts or Timeouts.from_env()).connect_args(engine_of(dsn))
    backend = get_backend(yoyo_url(dsn, limits))
    try:
        yield backend
    finally:
        backend.connection.close()


@contextlib.contextmanager
def migration_lock(dsn: str, backend: DatabaseBackend) -> Iterator[None]:
    """The database's advisory lock `migrate`, then yoyo's lock row; a row found while
    the advisory lock is ours was left by a killed run: removed, and said so."""
    with database_lock(dsn, "migrate"):
        with backend.transaction():
            left = backend.execute(f"SELECT pid FROM {backend.lock_table}").fetchall()
        if left:
            backend.break_lock()
            pids = ", ".join(str(row[0]) for row in left)
            print(f"migrate: removed the lock a killed run (pid {pids}) left", file=sys.stderr)
        with backend.lock():
            yield


def _explain(migration: Migration, exc: Exception, timeouts: Timeouts) -> str:
    """A one-line reason for a failed migration: lock and statement timeouts by name."""
    # MariaDB commits at each DDL statement, so yoyo's ROLLBACK TO SAVEPOINT after a failed
    # one fails too (1305) and hides it: the first error of the chain is the reason
    while isinstance(exc.__context__, Exception) and exc.__context__.args:
        exc = exc.__context__
    code = getattr(getattr(exc, "diag", None), "sqlstate", None) or (
        exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    )
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    retryable = (
        code is None
        or code in RETRYABLE
        or (isinstance(code, str) and code.startswith(("08", "57P")))
        or (isinstance(code, int) and 2000 <= code < 3000)
    )
    if code in ("55P03", 1205):  # lock_not_available / ER_LOCK_WAIT_TIMEOUT
        why = f"could not get its lock within lock_timeout ({timeouts.lock:g} s): {text}"
    elif code in ("57014", 1969):  # query_canceled / ER_STATEMENT_TIMEOUT
        why = f"ran longer than statement_timeout ({timeouts.statement:g} s): {text}"
    else:
        why = text
    undone = (
        "rolled back, nothing of it applied"
        if migration.use_transactions
        else "not transactional: its statements up to the failed one were undone by its rollback"
    )
    then = (
        "run `make migrate-up` again"
        if retryable
        else "a re-run fails the same way: fix the migration, then run `make migrate-up`"
    )
    return f"migration {migration.id} {why}; {undone}; {then}"


def up(
    db: str,
    dsn: str | None = None,
    steps: int | None = None,
    *,
    source: Path | None = None,
    timeouts: Timeouts | None = None,
) -> list[str]:
    """Apply the next `steps` pending migrations (all when None) of `source` (the db's
    folder by default), one at a time; returns the ids applied. A failure raises
    MigrationFailedError naming the migration; those before it stay applied. A DSN of
    the other engine is refused (EngineMismatchError) before anything is created."""
    dsn = checked_dsn(db, dsn)
    timeouts = timeouts or Timeouts.from_env()
    migrations = read_migrations(str(source or migrations_dir(db)))
    applied: list[str] = []
    with backend_for(dsn, timeouts) as backend, migration_lock(dsn, backend):
        pending = backend.to_apply(migrations)
        pending = pending if steps is None else pending[:steps]
        for migration in pending:
            try:
                backend.apply_one(migration)
            except backend.DatabaseError as exc:
                raise MigrationFailedError(_explain(migration, exc, timeouts)) from exc
            applied.append(migration.id)
    return applied


def down(
    db: str, dsn: str | None = None, steps: int | None = 1, *, source: Path | None = None
) -> list[str]:
    """Roll back the last `steps` migrations (all of them when steps is None)."""
    dsn = checked_dsn(db, dsn)
    migrations = read_migrations(str(source or migrations_dir(db)))
    with backend_for(dsn) as backend, migration_lock(dsn, backend):
        applied = backend.to_rollback(migrations)
        chosen = applied if steps is None else applied[:steps]
        backend.rollback_migrations(chosen)
    return [m.id for m in chosen]


def status(db: str, dsn: str | None = None) -> list[tuple[str, bool]]:
    """Each migration's id and whether it is applied. Read-only: a missing database is
    not created, its migrations are all pending."""
    dsn = checked_dsn(db, dsn)
    migrations = read_migrations(str(migrations_dir(db)))
    if not database_exists(dsn):
        return [(m.id, False) for m in migrations]
    with backend_for(dsn, create=False) as backend:
        return [(m.id, backend.is_applied(m)) for m in migrations]


SCHEMA_BLOCK = re.compile(r"^([ \t]*)schema:[ \t]*\n((?:\1[ \t]+- .*\n)+)", re.MULTILINE)
SCHEMA_FLOW = re.compile(r"^([ \t]*schema:[ \t]*\[)([^\]\n]*)\]", re.MULTILINE)


def with_schema_entry(config: str, entry: str) -> str:
    """sqlc.yaml text with `entry` appended to its one `schema:` list, comments untouched.

    Edited as text (a YAML round trip would drop the comments); the result is parsed again
    to prove the list now ends with `entry`.
    """
    blocks, flows = list(SCHEMA_BLOCK.finditer(config)), list(SCHEMA_FLOW.finditer(config))
    if len(blocks) + len(flows) != 1:
        raise ValueError("expected exactly one `schema:` list in sqlc.yaml")
    if blocks:  # "schema:" then "  - item" lines: one more line, indented like the last
        end, last = blocks[0].end(), blocks[0].group(2).splitlines()[-1]
        line = last[: last.index("-")] + f"- {entry}\n"
    else:  # "schema: [a, b]": ", entry" before the bracket
        end = flows[0].end() - 1
        line = f", {entry}" if flows[0].group(2).strip() else entry
    edited = config[:end] + line + config[end:]
    schema = yaml.safe_load(edited)["sql"][0]["schema"]
    if not isinstance(schema, list) or schema[-1] != entry:
        raise ValueError(f"could not append {entry} to the `schema:` list of sqlc.yaml")
    return edited


def template(engine: str, stem: str, index: bool = False) -> tuple[str, str]:
    """The text of a new up-migration and its rollback, from the online-safe templates of
    tools/migrations/templates/ (`index`: a CREATE INDEX CONCURRENTLY migration)."""
    if index and engine != "postgresql":
        raise ValueError("index=1 is for PostgreSQL (MariaDB: ADD INDEX ..., ALGORITHM=INPLACE)")
    up_name, down_name = ("index", "index.rollback") if index else (engine, "rollback")
    return (
        (TEMPLATES / f"{up_name}.sql.tmpl").read_text().format(stem=stem),
        (TEMPLATES / f"{down_name}.sql.tmpl").read_text().format(stem=stem),
    )


def new(db: str, name: str, root: Path = ROOT, *, index: bool = False) -> list[Path]:
    """Create NNNN_name.sql and NNNN_name.rollback.sql with the next number, from the
    engine's online-safe template, and list the up-migration last in `schema:` of
    sql/<db>/sqlc.yaml (else sqlc silently ignores it) when the db has one (a new
    service's db has none until its first query); returns the files written."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError("name must be lower_snake_case (a-z, 0-9, _)")
    database = get_database(db)
    folder = root / "migrations" / database.name
    config_file = root / "sql" / database.name / "sqlc.yaml"
    numbers = [int(p.name[:4]) for p in folder.glob("[0-9][0-9][0-9][0-9]_*.sql")]
    stem = f"{max(numbers, default=0) + 1:04d}_{name}"
    up_file, down_file = folder / f"{stem}.sql", folder / f"{stem}.rollback.sql"
    up_text, down_text = template(database.engine, stem, index)
    config = None
    if config_file.is_file():  # edited in memory first: a bad sqlc.yaml fails before any write
        entry = os.path.relpath(up_file, config_file.parent)
        config = with_schema_entry(config_file.read_text(), entry)
    folder.mkdir(parents=True, exist_ok=True)
    up_file.write_text(up_text)
    down_file.write_text(down_text)
    if config is None:
        return [up_file, down_file]
    config_file.write_text(config)
    return [up_file, down_file, config_file]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.migrations.migrate", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "new"])
    parser.add_argument("db", help="one of: " + ", ".join(DATABASES))
    parser.add_argument("--steps", type=int, default=1, help="down: how many steps (default 1)")
    parser.add_argument("--all", action="store_true", help="down: every applied migration")
    parser.add_argument("--name", help="new: the migration's name")
    parser.add_argument(
        "--index", action="store_true", help="new: a CREATE INDEX CONCURRENTLY migration"
    )
    args = parser.parse_args(argv)
    try:
        get_database(args.db)
        if args.command != "new":  # the database it acts on, without user and password
            dsn = checked_dsn(args.db)
            missing = args.command == "status" and not database_exists(dsn)
            note = " (does not exist yet: `make migrate-up` creates it)" if missing else ""
            print(f"{args.db}: {where(dsn)}{note}")
        if args.command == "up":
            applied = up(args.db)
            print(f"{args.db}: applied {len(applied)}: {', '.join(applied) or 'nothing pending'}")
        elif args.command == "down":
            if args.steps < 1:
                raise ValueError("--steps must be >= 1")
            rolled = down(args.db, steps=None if args.all else args.steps)
            print(f"{args.db}: rolled back {len(rolled)}: {', '.join(rolled) or 'nothing applied'}")
        elif args.command == "status":
            for mid, is_applied in status(args.db):
                print(f"{'applied ' if is_applied else 'pending '} {mid}")
        else:
            if not args.name:
                raise ValueError("new needs name=NAME")
            with file_lock("migrate-new"):
                written = new(args.db, args.name, index=args.index)
            for path in written[:2]:
                print(f"created {path.relative_to(ROOT)}")
            if len(written) > 2:
                print(f"listed it in {written[2].relative_to(ROOT)} (schema:)")
            else:
                print(f"no sql/{args.db}/sqlc.yaml yet: list it there once the db has queries")
    except Exception as exc:  # one clear line for the Makefile user, not a traceback
        print(f"migrate: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
