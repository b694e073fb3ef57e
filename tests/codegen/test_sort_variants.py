"""`fixup: sort` on real engines, for every driver and model type of the golden cases
(asyncpg with dataclasses and pydantic, psycopg with msgspec, psycopg-sync, aiomysql with
dataclasses and attrs, sqlite3, aiosqlite with msgspec): every key and direction of the
generated function walked page by page through `after`, ties and NULLs included, equals the
whole set in the engine's order; sync drivers' functions are plain functions.
"""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import aiosqlite
import psycopg
import pytest

from tests.codegen import test_runtime_mysql as my
from tests.codegen import test_runtime_pg as pg
from tests.codegen.golden.aiosqlite import authors as aiosqlite_authors
from tests.codegen.golden.attrs import gadgets as attrs_gadgets
from tests.codegen.golden.mysql import gadgets
from tests.codegen.golden.pg import authors, books
from tests.codegen.golden.psycopg import authors as psy_authors
from tests.codegen.golden.psycopg_sync import authors as sync_authors
from tests.codegen.golden.pydantic import authors as pydantic_authors
from tests.codegen.golden.sqlite import authors as sqlite_authors
from tests.servers import DatabaseFactory
from tools.local.dbadmin import psycopg_dsn
from tools.sqlc_types import apply_schema

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
NAMES = ["bea", "al", "bea", "cy", "al", "bea", "dee"]  # ties on every name
AGES = [30, None, 30, 25, None, 41, 25]  # ties and NULLs
SIZES = [1, 2, 3]


def expected(rows: list[Any], key: str, down: bool, nulls_first_up: bool) -> list[Any]:
    """The engine's order: by key (NULLs last ascending on PostgreSQL, first on MariaDB and
    SQLite; the other end descending), then by id, all reversed for desc."""

    def rank(row: Any) -> tuple[Any, ...]:
        value = getattr(row, key)
        null = value is None
        return (not null if nulls_first_up else null, value if not null else 0, row.id)

    return sorted(rows, key=rank, reverse=down)


async def call(function: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """The generated function's result, awaited where it is async."""
    result = function(*args, **kw)
    return await result if inspect.isawaitable(result) else result


async def walk(fetch: Callable[..., Any], key: str, sort: str, size: int) -> list[Any]:
    """Every row, `size` at a time, each page after the last row of the one before."""
    seen: list[Any] = []
    after = None
    for _ in range(100):
        page = await fetch(orderby=key, sort=sort, after=after, limit=size)
        seen += page
        if len(page) < size:
            return seen
        after = (getattr(page[-1], key), page[-1].id)
    raise AssertionError("the walk did not end")


async def check_walks(fetch: Callable[..., Any], sorting: Any, nulls_first_up: bool) -> None:
    """Every key and direction, each page size: the walk is the whole set in order."""
    every = await fetch(orderby=next(iter(sorting.keys)), sort="asc", after=None, limit=100)
    assert len(every) == len(NAMES)
    for key, sort_key in sorting.keys.items():
        for sort in sort_key.directions:
            want = [r.id for r in expected(every, key, sort == "desc", nulls_first_up)]
            for size in SIZES:
                got = await walk(fetch, key, sort, size)
                assert [r.id for r in got] == want, (key, sort, size)


@pytest.fixture(scope="module")
def pg_dsn(databases: DatabaseFactory) -> str:
    created = databases.create("cg_sort", "postgresql")
    apply_schema(created, [pg.SCHEMA])
    return created


@pytest.fixture
async def pg_conn(pg_dsn: str) -> AsyncIterator[pg.Conn]:
    conn = await pg.connect(pg_dsn)
    await conn.execute("TRUNCATE books, authors RESTART IDENTITY CASCADE")
    for i, (name, age) in enumerate(zip(NAMES, AGES, strict=True)):
        at = T0 + timedelta(minutes=i % 3)  # ties on created_at too
        await conn.execute(
            "INSERT INTO authors (name, age, created_at) VALUES ($1, $2, $3)", name, age, at
        )
    yield conn
    await conn.close()


@pytest.mark.parametrize("module", [authors, pydantic_authors], ids=["dataclass", "pydantic"])
async def test_asyncpg_walks_every_key_and_direction(pg_conn: pg.Conn, module: ModuleType) -> None:
    async def fetch(*, limit: int, **kw: Any) -> Any:
        return await module.page_authors(pg_conn, mood=None, row_limit=limit, **kw)

    await check_walks(fetch, module.PAGE_AUTHORS_SORTING, nulls_first_up=False)


async def test_psycopg_walks_every_key_and_direction(pg_dsn: str, pg_conn: pg.Conn) -> None:
    async with await psycopg.AsyncConnection.connect(psycopg_dsn(pg_dsn), autocommit=True) as conn:

        async def fetch(*, limit: int, **kw: Any) -> Any:
            return await psy_authors.page_authors(conn, mood=None, row_limit=limit, **kw)

        await check_walks(fetch, psy_authors.PAGE_AUTHORS_SORTING, nulls_first_up=False)


async def test_psycopg_sync_walks_every_key_and_direction(pg_dsn: str, pg_conn: pg.Conn) -> None:
    assert not inspect.iscoroutinefunction(sync_authors.page_authors)  # sync: a plain def
    with psycopg.connect(psycopg_dsn(pg_dsn), autocommit=True) as conn:

        async def fetch(*, limit: int, **kw: Any) -> Any:
            return sync_authors.page_authors(conn, mood=None, row_limit=limit, **kw)

        await check_walks(fetch, sync_authors.PAGE_AUTHORS_SORTING, nulls_first_up=False)


async def test_asyncpg_filters_and_offset_variants(pg_conn: pg.Conn) -> None:
    first = await authors.page_authors(pg_conn, orderby="age", sort="asc", mood=None, row_limit=1)
    assert first[0].age == 25  # NULLs last ascending
    top = await authors.page_authors(pg_conn, orderby="age", sort="desc", mood=None, row_limit=2)
    assert [r.age for r in top] == [None, None]  # NULLs first descending
    author_id = first[0].id
    for i, (title, price) in enumerate([("b", "2.00"), ("a", "3.00"), ("b", "1.00")]):
        await pg_conn.execute(
            "INSERT INTO books (author_id, title, price) VALUES ($1, $2, $3)",
            author_id,
            title,
            Decimal(price) + i,
        )
    by_title = await books.list_books_of_author(
        pg_conn, orderby="title", sort="asc", author_id=author_id, row_offset=1, row_limit=5
    )
    assert [(b.title, b.id) for b in by_title] == [("b", 1), ("b", 3)]
    by_price = await books.list_books_of_author(
        pg_conn, orderby="price", sort="desc", author_id=author_id, row_offset=0, row_limit=5
    )
    assert [b.price for b in by_price] == [Decimal("4.00"), Decimal("3.00"), Decimal("2.00")]
    assert set(books.LIST_BOOKS_OF_AUTHOR) == {
        ("title", "asc"),
        ("title", "desc"),
        ("price", "desc"),
    }


@pytest.fixture(scope="module")
def my_dsn(databases: DatabaseFactory) -> str:
    created = databases.create("cg_mysort", "mysql")
    apply_schema(created, [my.SCHEMA])
    return created


@pytest.fixture
async def my_conn(my_dsn: str) -> AsyncIterator[Any]:
    conn = await my.connect(my_dsn)
    await my.sql(conn, "DELETE FROM parts")
    await my.sql(conn, "DELETE FROM gadgets")
    prices = [None if a is None else Decimal(a) / 4 for a in AGES]
    for i, (name, price) in enumerate(zip(NAMES, prices, strict=True)):
        at = (T0 + timedelta(minutes=i % 3)).replace(tzinfo=None)
        await my.sql(
            conn,
            "INSERT INTO gadgets (name, price, active, created_at) VALUES (%s, %s, 1, %s)",
            name,
            price,
            at,
        )
    yield conn
    conn.close()


@pytest.mark.parametrize("module", [gadgets, attrs_gadgets], ids=["dataclass", "attrs"])
async def test_aiomysql_walks_every_key_and_direction(my_conn: Any, module: ModuleType) -> None:
    async def fetch(*, limit: int, **kw: Any) -> Any:
        return await module.sort_gadgets(my_conn, active=True, limit=limit, **kw)

    await check_walks(fetch, module.SORT_GADGETS_SORTING, nulls_first_up=True)


SQLITE_SCHEMA = Path(__file__).parent / "sqlite" / "schema.sql"
RATINGS = [2.5, 1.0, 2.5, 0.5, 1.0, 4.0, 0.5]  # REAL, with ties
BIOS = ["x", None, "x", "y", None, "z", "y"]  # text, with ties and NULLs


def sqlite_rows(db: sqlite3.Connection) -> None:
    db.executescript(SQLITE_SCHEMA.read_text())
    for name, rating, bio in zip(NAMES, RATINGS, BIOS, strict=True):
        db.execute("INSERT INTO authors (name, rating, bio) VALUES (?, ?, ?)", (name, rating, bio))
    db.commit()


@pytest.mark.parametrize(
    "module", [sqlite_authors, aiosqlite_authors], ids=["sqlite3", "aiosqlite"]
)
async def test_sqlite_walks_every_key_and_direction(tmp_path: Path, module: ModuleType) -> None:
    path = tmp_path / "sort.db"
    with sqlite3.connect(path) as db:
        sqlite_rows(db)
    sync = module is sqlite_authors
    assert inspect.iscoroutinefunction(module.page_authors) is not sync
    conn: Any = sqlite3.connect(path) if sync else await aiosqlite.connect(path)
    try:

        async def fetch(*, limit: int, **kw: Any) -> Any:
            return await call(
                module.page_authors, conn, active=True, skip=[99], row_limit=limit, **kw
            )

        await check_walks(fetch, module.PAGE_AUTHORS_SORTING, nulls_first_up=True)
        assert module.PAGE_AUTHORS_SORTING.keys["rating"].kind == "float"  # a REAL keyset key
        skipped = await call(
            module.page_authors, conn, orderby="rating", sort="desc", active=True, skip=[6],
            row_limit=100, after=(2.5, 3),
        )  # fmt: skip
        assert [(r.rating, r.id) for r in skipped] == [
            (2.5, 1),
            (1.0, 5),
            (1.0, 2),
            (0.5, 7),
            (0.5, 4),
        ]
    finally:
        await call(conn.close)
