"""The options teams moving from other plugins look for, on every driver: `emit_querier`
(a Querier class holding the connection, a method per function, sync ones sync),
`emit_exact_table_names` (a model named as its table) and `omit_unused_models` (no class for
a table no query returns), each generated as users do, checked by mypy --strict and run on
the real engine (PostgreSQL, MariaDB, SQLite)."""

from __future__ import annotations

import inspect
import sqlite3
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

import aiosqlite
import psycopg
import pytest

from tests import pg
from tests.codegen.conformance import support
from tests.codegen.inline_support import generate
from tests.codegen.test_runtime_mysql import connect as mysql_connect
from tests.servers import DatabaseFactory, Servers
from tools.local.dbadmin import psycopg_dsn
from tools.sqlc_types import apply_schema

ENGINES = {
    "asyncpg": "postgresql",
    "psycopg": "postgresql",
    "psycopg-sync": "postgresql",
    "aiomysql": "mysql",
    "sqlite3": "sqlite",
    "aiosqlite": "sqlite",
}
KEY = {
    "postgresql": "bigserial PRIMARY KEY",
    "mysql": "BIGINT AUTO_INCREMENT PRIMARY KEY",
    "sqlite": "INTEGER PRIMARY KEY",
}
SCHEMA = """
CREATE TABLE authors (id {key}, name VARCHAR(40) NOT NULL, bio TEXT);
CREATE TABLE unused_things (id {key}, note TEXT);
"""
QUERIES = """
-- name: GetAuthor :one
SELECT * FROM authors WHERE id = sqlc.arg(id);

-- name: ListAuthors :many
SELECT id, name FROM authors ORDER BY id;

-- name: RenameAuthor :exec
UPDATE authors SET name = sqlc.arg(name) WHERE id = sqlc.arg(id);

-- name: AddAuthors :batchexec
INSERT INTO authors (name, bio) VALUES (sqlc.arg(name), sqlc.narg(bio));
"""
ADD = {  # the new row's id
    "postgresql": "-- name: AddAuthor :one\nINSERT INTO authors (name, bio) VALUES "
    "(sqlc.arg(name), sqlc.narg(bio)) RETURNING id;\n",
    "mysql": "-- name: AddAuthor :execlastid\nINSERT INTO authors (name, bio) VALUES "
    "(sqlc.arg(name), sqlc.narg(bio));\n",
}
ADD["sqlite"] = ADD["mysql"]
SORTED = """
-- name: PageAuthors :many
-- fixup: sort name, keyset id
SELECT id, name FROM authors LIMIT sqlc.arg(row_limit);
"""
OPTIONS = {"emit_querier": True, "emit_exact_table_names": True, "omit_unused_models": True}


def package(driver: str) -> str:
    return f"opt_{driver.replace('-', '_')}"


@pytest.fixture(scope="module")
def root(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Path:
    into = tmp_path_factory.mktemp("querier_options")
    for driver, engine in ENGINES.items():
        queries = ADD[engine] + QUERIES + (SORTED if driver == "asyncpg" else "")
        generate(into, servers, package(driver), engine=engine,
                 schema=SCHEMA.format(key=KEY[engine]), queries=queries,
                 options={"driver": driver, **OPTIONS})  # fmt: skip
    return into


def load(root: Path, driver: str, module: str) -> ModuleType:
    return support.import_generated(root / f"{package(driver)}_build" / package(driver), module)


def test_generated_code_passes_mypy_strict(root: Path) -> None:
    for driver in ENGINES:
        result = support.mypy_strict(root / f"{package(driver)}_build" / package(driver))
        assert result.returncode == 0, f"{driver}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("driver", list(ENGINES))
def test_exact_table_names_and_unused_models_omitted(root: Path, driver: str) -> None:
    models = load(root, driver, "models")
    assert hasattr(models, "Authors")  # the table's name as it is, not singular
    assert not hasattr(models, "Author")
    assert not hasattr(models, "UnusedThings")  # no query returns the table
    assert not hasattr(models, "UnusedThing")


@pytest.mark.parametrize("driver", list(ENGINES))
def test_querier_methods_mirror_the_functions(root: Path, driver: str) -> None:
    q = load(root, driver, "q")
    functions = {
        name: fn
        for name, fn in vars(q).items()
        if inspect.isfunction(fn) and fn.__module__ == q.__name__
    }
    methods = {name for name in vars(q.Querier) if not name.startswith("_")} - {"conn"}
    assert set(functions) == methods
    for name, fn in functions.items():
        method = getattr(q.Querier, name)
        hints = typing.get_type_hints(fn)
        del hints["conn"]
        assert typing.get_type_hints(method) == hints, name
        assert inspect.iscoroutinefunction(method) == inspect.iscoroutinefunction(fn), name
    assert (
        typing.get_type_hints(q.Querier.__init__)["conn"]
        == typing.get_type_hints(q.get_author)["conn"]
    )


async def test_asyncpg(root: Path, databases: DatabaseFactory) -> None:
    q = load(root, "asyncpg", "q")
    dsn = databases.create("opt_asyncpg", "postgresql")
    apply_schema(dsn, [root / "opt_asyncpg_case" / "schema.sql"])
    async with pg.connected(dsn) as conn:
        await run_async(q, q.Querier(conn))
        page = await q.Querier(conn).page_authors(orderby="name", sort="desc", row_limit=2)
        assert [a.name for a in page] == ["cy", "bo"]
        async with conn.transaction():  # asyncpg's cursor needs one
            assert [a.name async for a in q.Querier(conn).iter_list_authors()] == names(3)


async def test_psycopg(root: Path, databases: DatabaseFactory) -> None:
    q = load(root, "psycopg", "q")
    dsn = databases.create("opt_psycopg", "postgresql")
    apply_schema(dsn, [root / "opt_psycopg_case" / "schema.sql"])
    async with await psycopg.AsyncConnection.connect(psycopg_dsn(dsn), autocommit=True) as conn:
        await run_async(q, q.Querier(conn))
        assert [a.name async for a in q.Querier(conn).iter_list_authors()] == names(3)


def test_psycopg_sync(root: Path, databases: DatabaseFactory) -> None:
    q = load(root, "psycopg-sync", "q")
    dsn = databases.create("opt_psycopg_sync", "postgresql")
    apply_schema(dsn, [root / "opt_psycopg_sync_case" / "schema.sql"])
    with psycopg.connect(psycopg_dsn(dsn), autocommit=True) as conn:
        run_sync(q, q.Querier(conn))


async def test_aiomysql(root: Path, databases: DatabaseFactory) -> None:
    q = load(root, "aiomysql", "q")
    dsn = databases.create("opt_aiomysql", "mysql")
    apply_schema(dsn, [root / "opt_aiomysql_case" / "schema.sql"])
    conn = await mysql_connect(dsn)
    try:
        await run_async(q, q.Querier(conn))
        assert [a.name async for a in q.Querier(conn).iter_list_authors()] == names(3)
    finally:
        conn.close()


def test_sqlite3(root: Path, tmp_path: Path) -> None:
    q = load(root, "sqlite3", "q")
    conn = sqlite3.connect(tmp_path / "t.db")
    conn.executescript((root / "opt_sqlite3_case" / "schema.sql").read_text())
    try:
        run_sync(q, q.Querier(conn))
    finally:
        conn.close()


async def test_aiosqlite(root: Path, tmp_path: Path) -> None:
    q = load(root, "aiosqlite", "q")
    async with aiosqlite.connect(tmp_path / "t.db") as conn:
        await conn.executescript((root / "opt_aiosqlite_case" / "schema.sql").read_text())
        await run_async(q, q.Querier(conn))
        assert [a.name async for a in q.Querier(conn).iter_list_authors()] == names(3)


def names(count: int) -> list[str]:
    return ["ann", "bo", "cy"][:count]


async def run_async(q: ModuleType, querier: Any) -> None:
    """Every command through the Querier; the module's functions see the same rows."""
    first = await querier.add_author(name="an", bio=None)
    await querier.rename_author(name="ann", id=first)
    await querier.add_authors([q.AddAuthorsParams("bo", "b"), q.AddAuthorsParams("cy", None)])
    author = await querier.get_author(id=first)
    assert (type(author).__name__, author.name, author.bio) == ("Authors", "ann", None)
    listed = await querier.list_authors()
    assert [a.name for a in listed] == names(3)
    assert listed == await q.list_authors(querier.conn)


def run_sync(q: ModuleType, querier: Any) -> None:
    """run_async's calls on a sync driver: plain methods, no awaiting."""
    first = querier.add_author(name="an", bio=None)
    querier.rename_author(name="ann", id=first)
    querier.add_authors([q.AddAuthorsParams("bo", "b"), q.AddAuthorsParams("cy", None)])
    author = querier.get_author(id=first)
    assert (type(author).__name__, author.name, author.bio) == ("Authors", "ann", None)
    assert [a.name for a in querier.list_authors()] == names(3)
    assert [a.name for a in querier.iter_list_authors()] == names(3)
    assert querier.list_authors() == q.list_authors(querier.conn)
