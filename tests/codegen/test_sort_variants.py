"""`fixup: sort` on real servers: every key and direction of the generated function walked
page by page through `after` (asyncpg, psycopg, aiomysql), ties and NULLs included, equals
the whole set in the engine's order; and a bad directive is refused naming it and the query.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from codegen.errors import CodegenError
from codegen.sort_variants import check_unique, expand, parse, unique_columns
from tests.codegen import test_runtime_mysql as my
from tests.codegen import test_runtime_pg as pg
from tests.codegen.golden.mysql import gadgets
from tests.codegen.golden.pg import authors, books
from tests.codegen.golden.psycopg import authors as psy_authors
from tests.servers import DatabaseFactory
from tools.dbadmin import psycopg_dsn
from tools.sqlc_types import apply_schema

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
NAMES = ["bea", "al", "bea", "cy", "al", "bea", "dee"]  # ties on every name
AGES = [30, None, 30, 25, None, 41, 25]  # ties and NULLs


def expected(rows: list[Any], key: str, down: bool, nulls_first_up: bool) -> list[Any]:
    """The engine's order: by key (NULLs last ascending on PostgreSQL, first on MariaDB;
    the other end descending), then by id, all reversed for desc."""

    def rank(row: Any) -> tuple[Any, ...]:
        value = getattr(row, key)
        null = value is None
        return (not null if nulls_first_up else null, value if not null else 0, row.id)

    return sorted(rows, key=rank, reverse=down)


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


WALKS = [(k, d) for k, ds in authors.PAGE_AUTHORS_SORTING.keys.items() for d in ds.directions]


@pytest.mark.parametrize(("key", "sort"), WALKS)
@pytest.mark.parametrize("size", [1, 2, 3])
async def test_asyncpg_walks_every_key_and_direction(
    pg_conn: pg.Conn, key: str, sort: str, size: int
) -> None:
    async def fetch(*, limit: int, **kw: Any) -> Any:
        return await authors.page_authors(pg_conn, mood=None, row_limit=limit, **kw)

    every = await fetch(orderby="name", sort="asc", limit=100)
    assert len(every) == len(NAMES)
    got = await walk(fetch, key, sort, size)
    assert [r.id for r in got] == [r.id for r in expected(every, key, sort == "desc", False)]


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


@pytest.fixture
async def psy_conn(pg_dsn: str, pg_conn: pg.Conn) -> AsyncIterator[Any]:
    conn = await psycopg.AsyncConnection.connect(psycopg_dsn(pg_dsn), autocommit=True)
    yield conn
    await conn.close()


@pytest.mark.parametrize(("key", "sort"), WALKS)
async def test_psycopg_walks_every_key_and_direction(psy_conn: Any, key: str, sort: str) -> None:
    async def fetch(*, limit: int, **kw: Any) -> Any:
        return await psy_authors.page_authors(psy_conn, mood=None, row_limit=limit, **kw)

    every = await fetch(orderby="name", sort="asc", limit=100)
    assert len(every) == len(NAMES)
    for size in (1, 2):
        got = await walk(fetch, key, sort, size)
        assert [r.id for r in got] == [r.id for r in expected(every, key, sort == "desc", False)]


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


MY_WALKS = [(k, d) for k, ds in gadgets.SORT_GADGETS_SORTING.keys.items() for d in ds.directions]


@pytest.mark.parametrize(("key", "sort"), MY_WALKS)
async def test_aiomysql_walks_every_key_and_direction(my_conn: Any, key: str, sort: str) -> None:
    async def fetch(*, limit: int, **kw: Any) -> Any:
        return await gadgets.sort_gadgets(my_conn, active=True, limit=limit, **kw)

    every = await fetch(orderby="name", sort="asc", limit=100)
    assert len(every) == len(NAMES)
    for size in (1, 2, 3):
        got = await walk(fetch, key, sort, size)
        want = expected(every, key, sort == "desc", True)  # MariaDB: NULLs first ascending
        assert [r.id for r in got] == [r.id for r in want]


def query(comment: str, **extra: Any) -> dict[str, Any]:
    columns = [
        {"name": "id", "not_null": True, "table": {"name": "items"}},
        {"name": "name", "not_null": True, "table": {"name": "items"}},
        {"name": "age", "not_null": False, "table": {"name": "items"}},
    ]
    return {
        "name": "ListItems",
        "cmd": ":many",
        "filename": "items.sql",
        "text": "SELECT id, name, age FROM items WHERE age > $1 LIMIT $2",
        "columns": columns,
        "params": [
            {"number": 1, "column": {"name": "min_age", "not_null": True}},
            {"number": 2, "column": {"name": "row_limit", "not_null": True}},
        ],
        "comments": [" fixup: sort " + comment],
        **extra,
    }


@pytest.mark.parametrize(
    ("comment", "message"),
    [
        ("nick, keyset id", "sort key 'nick' is not a column of the result"),
        ("name sideways, keyset id", "unknown direction word 'sideways' for sort key 'name'"),
        ("name, keyset", "keyset paging needs a unique tie-breaker"),
        ("name, keyset id name", "the last item is 'keyset <unique column>'"),
        ("name, keyset age", "tie-breaker 'age' is nullable"),
        ("name, keyset name", "tie-breaker 'name' is also a sort key"),
        ("name, name desc, keyset id", "sort key 'name' given twice"),
    ],
)
def test_a_bad_directive_names_what_and_the_query(comment: str, message: str) -> None:
    with pytest.raises(CodegenError, match=message) as info:
        parse(query(comment))
    assert "items.sql: query ListItems" in str(info.value)


def test_keyset_needs_a_unique_tie_breaker() -> None:
    with pytest.raises(CodegenError, match=r"query ListItems: keyset paging needs a unique tie"):
        expand({"settings": {"engine": "postgresql"}, "queries": [query("name, age, keyset")]})
    spec = parse(query("age, keyset name"))
    assert spec is not None
    schema = "CREATE TABLE items (\n  id bigserial PRIMARY KEY,\n  name text NOT NULL\n);"
    assert unique_columns([schema]) == {("items", "id")}
    with pytest.raises(CodegenError, match=r"ListItems: tie-breaker 'name' is not a unique column"):
        check_unique(spec, unique_columns([schema]), "items.sql: query ListItems")
    unique_name = schema + "\nCREATE UNIQUE INDEX items_name ON items (name);"
    check_unique(spec, unique_columns([unique_name]), "items.sql: query ListItems")


def test_a_sorted_query_has_no_order_by_of_its_own_and_is_many() -> None:
    ordered = query("name, keyset id", text="SELECT id, name, age FROM items ORDER BY id")
    with pytest.raises(CodegenError, match=r"ListItems: a 'fixup: sort' query has no ORDER BY"):
        expand({"settings": {"engine": "postgresql"}, "queries": [ordered]})
    with pytest.raises(CodegenError, match=r"ListItems: 'fixup: sort' needs a :many query"):
        parse(query("name, keyset id", cmd=":one"))


def test_every_variant_is_static_and_each_is_one_query() -> None:
    raw = {"settings": {"engine": "postgresql"}, "queries": [query("name, age desc, keyset id")]}
    variants = expand(raw)["queries"]
    assert [q["name"] for q in variants] == [
        "ListItemsByNameAsc",
        "ListItemsByNameDesc",
        "ListItemsByAgeDesc",
    ]
    for q in variants:  # the keyset parameters follow the query's own, typed by the columns
        assert [p["number"] for p in q["params"]] == [1, 2, 3, 4]
        assert "WHERE (age > $1)\n  AND" in q["text"]
        assert q["text"].rstrip().endswith("LIMIT $2")
    assert [q["text"].split("ORDER BY ")[1].split("\n")[0] for q in variants] == [
        "name ASC, id ASC",
        "name DESC, id DESC",
        "age DESC, id DESC",
    ]
    schema = Path(__file__).parent / "pg" / "schema.sql"
    assert ("authors", "id") in unique_columns([schema.read_text()])
