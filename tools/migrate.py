"""yoyo migrations for the six databases: up, down, status, new.

Usage: python -m tools.migrate {up,down,status,new} DB [--steps N | --all] [--name NAME]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import yaml
from yoyo import get_backend, read_migrations
from yoyo.backends import DatabaseBackend

from tools.databases import DATABASES, engine_of, get_database
from tools.dbadmin import create_database

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"


def yoyo_url(dsn: str) -> str:
    """yoyo's scheme for our DSNs: psycopg 3 for PostgreSQL, PyMySQL for MySQL/MariaDB."""
    rest = dsn.split("://", 1)[1]
    return ("postgresql+psycopg://" if engine_of(dsn) == "postgresql" else "mysql://") + rest


def migrations_dir(db: str) -> Path:
    return MIGRATIONS / get_database(db).name


def backend_for(dsn: str) -> DatabaseBackend:
    create_database(dsn)
    return get_backend(yoyo_url(dsn))


def up(db: str, dsn: str | None = None, steps: int | None = None) -> list[str]:
    """Apply the next `steps` pending migrations (all when None); returns the ids applied."""
    dsn = dsn or get_database(db).dsn()
    backend = backend_for(dsn)
    migrations = read_migrations(str(migrations_dir(db)))
    with backend.lock():
        pending = backend.to_apply(migrations)
        pending = pending if steps is None else pending[:steps]
        backend.apply_migrations(pending)
    return [m.id for m in pending]


def down(db: str, dsn: str | None = None, steps: int | None = 1) -> list[str]:
    """Roll back the last `steps` migrations (all of them when steps is None)."""
    dsn = dsn or get_database(db).dsn()
    backend = backend_for(dsn)
    migrations = read_migrations(str(migrations_dir(db)))
    with backend.lock():
        applied = backend.to_rollback(migrations)
        chosen = applied if steps is None else applied[:steps]
        backend.rollback_migrations(chosen)
    return [m.id for m in chosen]


def status(db: str, dsn: str | None = None) -> list[tuple[str, bool]]:
    dsn = dsn or get_database(db).dsn()
    backend = backend_for(dsn)
    migrations = read_migrations(str(migrations_dir(db)))
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


def new(db: str, name: str, root: Path = ROOT) -> tuple[Path, Path]:
    """Create NNNN_name.sql and NNNN_name.rollback.sql with the next number, and list the
    up-migration last in `schema:` of sql/<db>/sqlc.yaml (else sqlc silently ignores it)."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError("name must be lower_snake_case (a-z, 0-9, _)")
    db = get_database(db).name
    folder = root / "migrations" / db
    config_file = root / "sql" / db / "sqlc.yaml"
    if not config_file.is_file():
        raise ValueError(f"{config_file.relative_to(root)} not found")
    numbers = [int(p.name[:4]) for p in folder.glob("[0-9][0-9][0-9][0-9]_*.sql")]
    stem = f"{max(numbers, default=0) + 1:04d}_{name}"
    up_file, down_file = folder / f"{stem}.sql", folder / f"{stem}.rollback.sql"
    entry = os.path.relpath(up_file, config_file.parent)
    config = with_schema_entry(config_file.read_text(), entry)  # fails before any write
    folder.mkdir(parents=True, exist_ok=True)
    up_file.write_text(f"-- {stem}: describe the change\n")
    down_file.write_text(f"-- {stem}: undo exactly what {stem}.sql does\n")
    config_file.write_text(config)
    return up_file, down_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.migrate", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "new"])
    parser.add_argument("db", help="one of: " + ", ".join(DATABASES))
    parser.add_argument("--steps", type=int, default=1, help="down: how many steps (default 1)")
    parser.add_argument("--all", action="store_true", help="down: every applied migration")
    parser.add_argument("--name", help="new: the migration's name")
    args = parser.parse_args(argv)
    try:
        get_database(args.db)
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
            for path in new(args.db, args.name):
                print(f"created {path.relative_to(ROOT)}")
            print(f"listed it in sql/{args.db}/sqlc.yaml (schema:)")
    except Exception as exc:  # one clear line for the Makefile user, not a traceback
        print(f"migrate: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
