"""Create and drop whole databases on a PostgreSQL or MySQL/MariaDB server (sync, admin-only)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import pymysql

from lib.db.connecting import engine_of
from tools.local.databases import database_name, with_database

DATABASE_EXISTS = 1007  # MariaDB ER_DB_CREATE_EXISTS
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]{1,63}$")


def _checked_name(dsn: str) -> str:
    name = database_name(dsn)
    if not _SAFE_NAME.match(name):
        raise ValueError(f"database name {name!r} must match {_SAFE_NAME.pattern}")
    return name


def mysql_connect(dsn: str, *, database: str | None = None) -> pymysql.connections.Connection[Any]:
    parts = urlsplit(dsn)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=database,
        autocommit=True,
        charset="utf8mb4",
    )


def psycopg_dsn(dsn: str) -> str:
    """psycopg wants plain postgresql://; yoyo wants postgresql+psycopg://."""
    return "postgresql://" + dsn.split("://", 1)[1]


def database_exists(dsn: str) -> bool:
    name = _checked_name(dsn)
    if engine_of(dsn) == "postgresql":
        admin = psycopg_dsn(with_database(dsn, "postgres"))
        with psycopg.connect(admin, autocommit=True) as pg:
            row = pg.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            return row is not None
    with mysql_connect(dsn) as my, my.cursor() as cur:
        cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (name,))
        return cur.fetchone() is not None


def create_database(dsn: str, *, template: str = "template0") -> bool:
    """Create the database of `dsn` when missing; True when it was created. Two runs at
    once (two `make migrate-up` on a new server) both succeed: the loser finds it made.
    PostgreSQL copies `template`, a database of the same server nobody is connected to
    (the tests copy one they migrated: tests/conftest.py); MySQL has no templates."""
    name = _checked_name(dsn)
    if engine_of(dsn) != "postgresql" and template != "template0":
        raise ValueError(f"{name}: a MySQL database has no template ({template!r})")
    if database_exists(dsn):
        return False
    if engine_of(dsn) == "postgresql":
        source = _checked_name(with_database(dsn, template))
        admin = psycopg_dsn(with_database(dsn, "postgres"))
        with psycopg.connect(admin, autocommit=True) as pg:
            try:
                pg.execute(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE "{source}"')
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                return False
    else:
        with mysql_connect(dsn) as my, my.cursor() as cur:
            try:
                cur.execute(
                    f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
            except pymysql.err.ProgrammingError as exc:
                if exc.args[0] != DATABASE_EXISTS:
                    raise
                return False
    return True


def drop_database(dsn: str) -> None:
    name = _checked_name(dsn)
    if engine_of(dsn) == "postgresql":
        admin = psycopg_dsn(with_database(dsn, "postgres"))
        with psycopg.connect(admin, autocommit=True) as pg:
            pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        with mysql_connect(dsn) as my, my.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
