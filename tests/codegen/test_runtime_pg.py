"""Every generated function of tests/codegen/golden/pg, run against a real PostgreSQL.

One throwaway database per module (schema.sql applied once); every test starts from empty
tables, creates the rows it needs and asserts exact values and exact Python types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import fields
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg
import pytest

from lib.db.runtime import ExecResult
from tests.codegen.golden.pg import authors as q
from tests.codegen.golden.pg import books as bq
from tests.codegen.golden.pg.models import Author, Book, Mood
from tests.codegen.runtime_support import T0, collect
from tests.servers import DatabaseFactory
from tools.sqlc_types import apply_schema

SCHEMA = Path(__file__).parent / "pg" / "schema.sql"

Conn: TypeAlias = "asyncpg.Connection[Any]"


async def connect(dsn: str) -> Conn:
    """A plain connection: the generated code needs no codec or other set-up."""
    conn: Conn = await asyncpg.connect(dsn)
    return conn


@pytest.fixture(scope="module")
def dsn(databases: DatabaseFactory) -> str:
    created = databases.create("cg_pg", "postgresql")
    apply_schema(created, [SCHEMA])
    return created


@pytest.fixture(scope="module")
async def module_conn(dsn: str) -> AsyncIterator[Conn]:
    conn = await connect(dsn)
    yield conn
    await conn.close()


@pytest.fixture
async def conn(module_conn: Conn) -> Conn:
    await module_conn.execute("TRUNCATE books, authors RESTART IDENTITY CASCADE")
    return module_conn


# Every nullable argument of CreateAuthor set (FULL) or left NULL (NULLS).
NULLS: dict[str, Any] = {
    "bio": None,
    "scores": None,
    "meta": None,
    "raw": None,
    "salary": None,
    "age": None,
    "ratio": None,
    "small": None,
    "born": None,
    "wakes": None,
    "nap": None,
    "ip": None,
    "net": None,
    "avatar": None,
}
FULL: dict[str, Any] = {
    "name": "Ann",
    "bio": "writes\nthings",
    "mood": Mood.SO_SO,
    "tags": ["a", "b c", "ü"],
    "scores": [1, -2, 2147483647],
    "meta": {"k": [1, 2.5, None, True, {"deep": "x"}], "e": {}},
    "raw": [1, "two", {"three": [3]}],
    "salary": Decimal("1234.56"),
    "age": 42,
    "ratio": 0.125,
    "small": -32768,
    "active": False,
    "born": date(1990, 2, 28),
    "wakes": time(6, 45, 30, 250000),
    "nap": timedelta(hours=1, minutes=30, seconds=5),
    "ip": IPv4Address("10.1.2.3"),
    "net": IPv4Network("192.168.0.0/24"),
    "avatar": b"\x00\xffPNG\x00",
    "created_at": T0,
}
TYPES: dict[str, type | tuple[type, ...]] = {
    "id": int,
    "name": str,
    "bio": str,
    "mood": Mood,
    "tags": list,
    "scores": list,
    "meta": dict,
    "raw": list,
    "salary": Decimal,
    "age": int,
    "ratio": float,
    "small": int,
    "active": bool,
    "born": date,
    "wakes": time,
    "nap": timedelta,
    "ip": IPv4Address,
    "net": IPv4Network,
    "avatar": bytes,
    "uid": UUID,
    "created_at": datetime,
}


async def new_author(conn: Conn, **kw: Any) -> Author:
    args: dict[str, Any] = {
        "name": "a",
        "mood": Mood.HAPPY,
        "tags": [],
        "active": True,
        "created_at": T0,
        **NULLS,
    }
    author = await q.create_author(conn, **{**args, **kw})
    assert isinstance(author, Author)
    return author


async def new_book(conn: Conn, author: Author, title: str, price: str = "9.99") -> Book:
    book = await bq.create_book(conn, author_id=author.id, title=title, price=Decimal(price))
    assert isinstance(book, Book)
    return book


# --- :one / type round trips -----------------------------------------------------------


@pytest.mark.parametrize("column", list(TYPES))
async def test_round_trip_every_column(conn: Conn, column: str) -> None:
    created = await new_author(conn, **FULL)
    got = await q.get_author(conn, id=created.id)
    assert got == created
    value: Any = getattr(got, column)
    assert isinstance(value, TYPES[column]), (column, type(value))
    if column in FULL:
        assert value == FULL[column]
    if column == "created_at":
        assert got.created_at.tzinfo is not None
        assert got.created_at.utcoffset() == timedelta(0)
    if column == "salary":
        assert str(value) == "1234.56"
    if column == "mood":
        assert value is Mood.SO_SO
        assert value.value == "so-so"
    if column in ("tags", "scores"):  # the arrays' elements decoded too
        assert all(isinstance(item, str if column == "tags" else int) for item in value)


@pytest.mark.parametrize(
    ("column", "value", "expected_type"),
    [
        ("ip", IPv6Address("2001:db8::1"), IPv6Address),
        ("ip", IPv4Interface("10.0.0.7/24"), IPv4Interface),
        ("net", IPv6Network("2001:db8::/32"), IPv6Network),
        ("created_at", datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))), datetime),
        ("nap", timedelta(days=3, microseconds=1), timedelta),
        ("meta", "just a string", str),
        ("meta", [], list),
        ("small", 32767, int),
        ("ratio", -1.5e300, float),
        ("tags", ["", "NULL", "{}", '"q"'], list),
        ("scores", [], list),
    ],
)
async def test_round_trip_more_values(
    conn: Conn, column: str, value: Any, expected_type: type
) -> None:
    created = await new_author(conn, **{column: value})
    got = await q.get_author(conn, id=created.id)
    assert got is not None
    assert getattr(got, column) == value
    assert isinstance(getattr(got, column), expected_type)
    if column == "created_at":
        assert got.created_at.utcoffset() == timedelta(0)


async def test_nulls_stored_as_null(conn: Conn) -> None:
    created = await new_author(conn, name="Nul")
    got = await q.get_author(conn, id=created.id)
    assert got == created
    for column in NULLS:
        assert getattr(got, column) is None, column
    stored = await conn.fetchrow(
        "SELECT num_nulls(bio, scores, meta, raw, salary, age, ratio, small, born, wakes,"
        " nap, ip, net, avatar) AS n FROM authors WHERE id = $1",
        created.id,
    )
    assert stored is not None
    assert stored["n"] == len(NULLS)


async def test_json_null_vs_sql_null(conn: Conn) -> None:
    # None is SQL NULL (narg); a JSON document round-trips as the document.
    created = await new_author(conn, meta={"a": None}, raw=None)
    row = await conn.fetchrow(
        "SELECT meta IS NULL AS m, raw IS NULL AS r FROM authors WHERE id = $1", created.id
    )
    assert row is not None
    assert (row["m"], row["r"]) == (False, True)
    assert created.meta == {"a": None}


async def test_create_author_defaults_via_execlastid(conn: Conn) -> None:
    new_id = await q.create_author_id(conn, name="Bare")
    assert isinstance(new_id, int)
    got = await q.get_author(conn, id=new_id)
    assert got is not None
    assert (got.id, got.name, got.mood, got.tags, got.active) == (
        new_id,
        "Bare",
        Mood.HAPPY,
        [],
        True,
    )
    assert isinstance(got.mood, Mood)
    assert isinstance(got.uid, UUID)
    assert got.created_at.tzinfo is not None
    assert abs(datetime.now(UTC) - got.created_at) < timedelta(minutes=5)
    second = await q.create_author_id(conn, name="Bare2")
    assert second == new_id + 1


async def test_count_authors(conn: Conn) -> None:
    assert await q.count_authors(conn) == 0
    for i in range(3):
        await new_author(conn, name=f"c{i}")
    count = await q.count_authors(conn)
    assert count == 3
    assert isinstance(count, int)


# --- :many and the streaming variants ------------------------------------------------


async def test_list_authors_by_ids(conn: Conn) -> None:
    a = await new_author(conn, name="a", **{k: v for k, v in FULL.items() if k != "name"})
    b = await new_author(conn, name="b")
    c = await new_author(conn, name="c")
    got = await q.list_authors_by_ids(conn, ids=[c.id, a.id, 999999])
    assert got == [a, c]
    assert all(isinstance(x, Author) and isinstance(x.mood, Mood) for x in got)
    assert await q.list_authors_by_ids(conn, ids=[b.id]) == [b]
    assert await q.list_authors_by_ids(conn, ids=[]) == []
    async with conn.transaction():
        assert await collect(q.iter_list_authors_by_ids(conn, ids=[a.id, c.id])) == [a, c]
        assert await collect(q.iter_list_authors_by_ids(conn, ids=[])) == []


async def test_list_authors_by_mood(conn: Conn) -> None:
    ids = {m: [] for m in Mood}  # type: dict[Mood, list[int]]
    for i, mood in enumerate([Mood.SO_SO, Mood.HAPPY, Mood.SO_SO, Mood.SAD]):
        ids[mood].append((await new_author(conn, name=f"m{i}", mood=mood)).id)
    got = await q.list_authors_by_mood(conn, mood=Mood.SO_SO)
    assert got == [
        q.ListAuthorsByMoodRow(ids[Mood.SO_SO][0], "m0", Mood.SO_SO),
        q.ListAuthorsByMoodRow(ids[Mood.SO_SO][1], "m2", Mood.SO_SO),
    ]
    assert all(type(r.mood) is Mood for r in got)
    async with conn.transaction():
        streamed = await collect(q.iter_list_authors_by_mood(conn, mood=Mood.SO_SO))
        assert streamed == got
        assert [
            r.name for r in await collect(q.iter_list_authors_by_mood(conn, mood=Mood.SAD))
        ] == ["m3"]
    await conn.execute("DELETE FROM authors WHERE mood = 'sad'")
    assert await q.list_authors_by_mood(conn, mood=Mood.SAD) == []


async def test_streaming_needs_a_transaction(conn: Conn) -> None:
    with pytest.raises(asyncpg.NoActiveSQLTransactionError):
        await collect(q.iter_list_authors_by_mood(conn, mood=Mood.HAPPY))


async def test_authors_with_books_left_join(conn: Conn) -> None:
    a = await new_author(conn, name="A")
    b = await new_author(conn, name="B")
    await new_book(conn, a, "t1", "1.50")
    await new_book(conn, a, "t2", "2.00")
    expected = [
        q.AuthorsWithBooksRow(a.id, "A", "t1", Decimal("1.50")),
        q.AuthorsWithBooksRow(a.id, "A", "t2", Decimal("2.00")),
        q.AuthorsWithBooksRow(b.id, "B", None, None),
    ]
    got = await q.authors_with_books(conn)
    assert got == expected
    assert isinstance(got[0].price, Decimal)
    async with conn.transaction():
        assert await collect(q.iter_authors_with_books(conn)) == expected


async def test_books_with_author_embed(conn: Conn) -> None:
    a = await new_author(conn, **FULL)
    b = await new_author(conn, name="B", mood=Mood.SAD)
    b1 = await new_book(conn, a, "first", "10.00")
    b2 = await new_book(conn, b, "second", "20.25")
    b3 = await new_book(conn, a, "third", "0.01")
    expected = [
        q.BooksWithAuthorRow(b1, a),
        q.BooksWithAuthorRow(b2, b),
        q.BooksWithAuthorRow(b3, a),
    ]
    got = await q.books_with_author(conn)
    assert got == expected
    for row in got:
        assert type(row.books) is Book
        assert type(row.authors) is Author
        assert type(row.authors.mood) is Mood
    assert got[0].authors.meta == FULL["meta"]
    assert [f.name for f in fields(got[0])] == ["books", "authors"]
    async with conn.transaction():
        assert await collect(q.iter_books_with_author(conn)) == expected


async def test_page_reads_the_once_columns_from_the_first_row(conn: Conn) -> None:
    """`fixup: once total`: the total beside the page's rows, one statement; an empty
    page is None (no row carries the total), and a page is read whole (no iter_)."""
    a = await new_author(conn)
    books = [await new_book(conn, a, f"t{i}") for i in range(5)]
    page = await bq.page_books(conn, row_offset=1, row_limit=2)
    assert page == bq.PageBooksPage(total=5, rows=books[1:3])
    assert all(type(row) is Book for row in page.rows)
    assert await bq.page_books(conn, row_offset=5, row_limit=2) is None
    assert not hasattr(bq, "iter_page_books")
    assert [f.name for f in fields(bq.PageBooksPage)] == ["total", "rows"]


async def test_page_with_two_once_columns_and_decoded_rows(conn: Conn) -> None:
    await new_author(conn, name="x", mood=Mood.SAD)
    await new_author(conn, name="y")
    page = await bq.page_author_moods(conn, row_limit=1)
    assert page == bq.PageAuthorMoodsPage(
        total=2, newest=T0, rows=[bq.PageAuthorMoodsRow("x", Mood.SAD)]
    )
    assert page is not None
    assert type(page.rows[0].mood) is Mood


async def test_create_book(conn: Conn) -> None:
    a = await new_author(conn)
    book = await new_book(conn, a, "Title", "12.30")
    assert book.author_id == a.id
    assert (book.title, book.price) == ("Title", Decimal("12.30"))
    assert isinstance(book.id, int)
    assert isinstance(book.price, Decimal)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await bq.create_book(conn, author_id=987654, title="x", price=Decimal(1))


async def test_book_percent_titles_literal_percent(conn: Conn) -> None:
    assert "'%' || $1 || '%'" in bq.BOOK_PERCENT_TITLES
    a = await new_author(conn)
    for title in ["100% cotton", "cotton blend", "silk", "50%"]:
        await new_book(conn, a, title)
    assert await bq.book_percent_titles(conn, part="cotton") == ["100% cotton", "cotton blend"]
    assert await bq.book_percent_titles(conn, part="0% c") == ["100% cotton"]
    assert await bq.book_percent_titles(conn, part="silk") == ["silk"]
    assert await bq.book_percent_titles(conn, part="nothing") == []
    assert await bq.book_percent_titles(conn, part=None) == []
    async with conn.transaction():
        assert await collect(bq.iter_book_percent_titles(conn, part="%")) == [
            "100% cotton",
            "cotton blend",
            "silk",
            "50%",
        ]


# --- :exec / :execrows / :execresult -------------------------------------------------


async def test_rename_author_exec(conn: Conn) -> None:
    a = await new_author(conn, name="Old")
    other = await new_author(conn, name="Other")
    await q.rename_author(conn, name="New", id=a.id)
    await q.rename_author(conn, name="Nobody", id=999999)
    assert (await q.get_author(conn, id=a.id)).name == "New"  # type: ignore[union-attr]
    assert (await q.get_author(conn, id=other.id)).name == "Other"  # type: ignore[union-attr]


async def test_set_bio_execrows(conn: Conn) -> None:
    ages = [22, 30, 40, None]
    made = [await new_author(conn, name=f"s{i}", age=age, bio="old") for i, age in enumerate(ages)]
    assert await q.set_bio(conn, bio="senior", min_age=30) == 2
    assert await q.set_bio(conn, bio=None, min_age=40) == 1
    assert await q.set_bio(conn, bio="x", min_age=100) == 0
    assert await q.set_bio(conn, bio="x", min_age=None) == 0  # age >= NULL matches nothing
    bios = [(await q.get_author(conn, id=a.id)).bio for a in made]  # type: ignore[union-attr]
    assert bios == ["old", "senior", None, "old"]
    is_null = await conn.fetchval("SELECT bio IS NULL FROM authors WHERE id = $1", made[2].id)
    assert is_null is True


async def test_delete_author_execresult(conn: Conn) -> None:
    a = await new_author(conn)
    result = await q.delete_author(conn, id=a.id)
    assert isinstance(result, ExecResult)
    assert result == ExecResult(rows_affected=1, last_insert_id=None)
    assert await q.delete_author(conn, id=a.id) == ExecResult(0, None)
    assert await q.get_author(conn, id=a.id) is None


# --- :copyfrom ----------------------------------------------------------------------

N_COPY = 10_000
MOODS = list(Mood)


def copy_item(i: int) -> q.CopyAuthorsParams:
    return q.CopyAuthorsParams(
        name=f"bulk{i}",
        age=None if i % 10 == 0 else i % 100,
        salary=None if i % 7 == 0 else Decimal(i) / 100,
        mood=MOODS[i % 3],
    )


async def test_copy_authors_10000(conn: Conn) -> None:
    items = [copy_item(i) for i in range(N_COPY)]
    assert await q.copy_authors(conn, (item for item in items)) == N_COPY
    assert await q.count_authors(conn) == N_COPY

    stats = await q.author_stats(conn, mood=None)
    assert stats is not None
    ages = [i.age for i in items if i.age is not None]
    salaries = [i.salary for i in items if i.salary is not None]
    assert stats.total == N_COPY
    assert (stats.min_age, stats.max_age, stats.max_age_or_zero) == (1, 99, 99)
    assert stats.avg_age is not None
    assert abs(stats.avg_age - Decimal(sum(ages)) / len(ages)) < Decimal("1e-12")
    assert (stats.min_salary, stats.max_salary) == (Decimal("0.01"), Decimal("99.99"))
    avg_salary = sum(salaries, Decimal(0)) / len(salaries)
    assert stats.avg_salary is not None
    assert abs(stats.avg_salary - avg_salary) < Decimal("1e-12")
    assert stats.avg_salary_or_zero == stats.avg_salary

    so_so = await q.author_stats(conn, mood=Mood.SO_SO)
    assert so_so is not None
    assert so_so.total == sum(1 for i in items if i.mood is Mood.SO_SO) == 3333

    happy = await q.list_authors_by_mood(conn, mood=Mood.HAPPY)
    assert len(happy) == 3334
    assert [r.name for r in happy[:3]] == ["bulk0", "bulk3", "bulk6"]
    got = await q.get_author(conn, id=happy[1].id)
    assert got is not None
    assert (got.name, got.age, got.salary, got.mood) == ("bulk3", 3, Decimal("0.03"), Mood.HAPPY)
    assert isinstance(got.salary, Decimal)
    first = await q.get_author(conn, id=happy[0].id)
    assert first is not None
    assert (first.age, first.salary, first.tags, first.active) == (None, None, [], True)
    async with conn.transaction():
        count = 0
        async for row in q.iter_list_authors_by_mood(conn, mood=Mood.SO_SO):
            assert row.mood is Mood.SO_SO
            count += 1
    assert count == 3333


async def test_copy_authors_empty(conn: Conn) -> None:
    assert await q.copy_authors(conn, []) == 0
    assert await q.count_authors(conn) == 0


# --- :batchexec / :batchone / :batchmany ---------------------------------------------


async def test_bump_ages_batchexec(conn: Conn) -> None:
    a = await new_author(conn, age=10)
    b = await new_author(conn, age=20)
    c = await new_author(conn, age=None)
    params = [q.BumpAgesParams(i) for i in (a.id, a.id, b.id, c.id, 999999)]
    await q.bump_ages(conn, params)
    ages = [(await q.get_author(conn, id=x.id)).age for x in (a, b, c)]  # type: ignore[union-attr]
    assert ages == [12, 21, None]
    await q.bump_ages(conn, [])


async def test_get_authors_batch_batchone(conn: Conn) -> None:
    a = await new_author(conn, name="A")
    b = await new_author(conn, name="B")
    got = await q.get_authors_batch(
        conn,
        [
            q.GetAuthorsBatchParams(b.id),
            q.GetAuthorsBatchParams(999999),
            q.GetAuthorsBatchParams(a.id),
        ],
    )
    assert got == [q.GetAuthorsBatchRow(b.id, "B"), None, q.GetAuthorsBatchRow(a.id, "A")]
    assert type(got[0]) is q.GetAuthorsBatchRow
    assert await q.get_authors_batch(conn, []) == []


async def test_books_of_authors_batchmany(conn: Conn) -> None:
    a = await new_author(conn, name="A")
    b = await new_author(conn, name="B")
    a1 = await new_book(conn, a, "a1")
    a2 = await new_book(conn, a, "a2")
    got = await q.books_of_authors(
        conn,
        [
            q.BooksOfAuthorsParams(a.id),
            q.BooksOfAuthorsParams(b.id),
            q.BooksOfAuthorsParams(999999),
            q.BooksOfAuthorsParams(a.id),
        ],
    )
    rows_a = [q.BooksOfAuthorsRow(a1.id, "a1"), q.BooksOfAuthorsRow(a2.id, "a2")]
    assert got == [rows_a, [], [], rows_a]
    assert all(type(r) is q.BooksOfAuthorsRow for r in got[0])
    assert await q.books_of_authors(conn, []) == []


# --- statistics ---------------------------------------------------------------------


@pytest.mark.parametrize("mood", [None, Mood.SO_SO])
async def test_author_stats_empty(conn: Conn, mood: Mood | None) -> None:
    if mood is not None:
        await new_author(conn, age=50, salary=Decimal(5), mood=Mood.HAPPY)  # filtered out
    stats = await q.author_stats(conn, mood=mood)
    assert stats == q.AuthorStatsRow(0, None, None, None, None, None, None, 0, Decimal(0))
    assert stats is not None
    assert type(stats.total) is int
    assert type(stats.max_age_or_zero) is int
    assert type(stats.avg_salary_or_zero) is Decimal


async def test_author_stats_values(conn: Conn) -> None:
    rows = [(22, "1000.00", Mood.SO_SO), (30, "2000.50", Mood.SO_SO), (40, None, Mood.SO_SO)]
    for age, salary, mood in rows:
        await new_author(conn, age=age, salary=salary and Decimal(salary), mood=mood)
    await new_author(conn, age=99, salary=Decimal("1.00"), mood=Mood.SAD)
    await new_author(conn, age=None, salary=None, mood=Mood.HAPPY)

    stats = await q.author_stats(conn, mood=Mood.SO_SO)
    assert stats is not None
    assert (stats.total, stats.min_age, stats.max_age, stats.max_age_or_zero) == (3, 22, 40, 40)
    assert isinstance(stats.avg_age, Decimal)
    assert stats.avg_age.quantize(Decimal("0.01")) == Decimal("30.67")
    assert (stats.min_salary, stats.max_salary) == (Decimal("1000.00"), Decimal("2000.50"))
    assert stats.avg_salary == Decimal("1500.25")
    assert stats.avg_salary_or_zero == Decimal("1500.25")
    for value in (stats.min_salary, stats.max_salary, stats.avg_salary):
        assert type(value) is Decimal
    for number in (stats.total, stats.min_age, stats.max_age, stats.max_age_or_zero):
        assert type(number) is int

    everyone = await q.author_stats(conn, mood=None)
    assert everyone is not None
    assert (everyone.total, everyone.min_age, everyone.max_age) == (5, 22, 99)
    assert everyone.avg_age == Decimal("47.75")

    happy = await q.author_stats(conn, mood=Mood.HAPPY)
    assert happy == q.AuthorStatsRow(1, None, None, None, None, None, None, 0, Decimal(0))


# --- JSON on a plain connection (the generated code encodes and decodes it) ---------


async def test_jsonb_without_codec_output(dsn: str, conn: Conn) -> None:
    new_id = await conn.fetchval(
        """INSERT INTO authors (name, meta, raw) VALUES ('j', '{"a": [1]}', '[2]') RETURNING id"""
    )
    plain = await connect(dsn)
    try:
        got = await q.get_author(plain, id=new_id)
    finally:
        await plain.close()
    assert got is not None
    assert (got.meta, got.raw) == ({"a": [1]}, [2])


# --- parameters typed with sqlc's types where the server cannot (the lock's casts) ----


async def test_optional_fields_cast_with_sqlcs_types(conn: Conn) -> None:
    author = await new_author(conn)
    book = await new_book(conn, author, "Draft", "5.00")
    assert await bq.update_book_fields(conn, title=None, price=Decimal("7.50"), id=book.id) == 1
    assert await bq.update_book_fields(conn, title="Final", price=None, id=book.id) == 1
    stored = await conn.fetchrow("SELECT title, price FROM books WHERE id = $1", book.id)
    assert (stored["title"], stored["price"]) == ("Final", Decimal("7.50"))
    assert await bq.update_book_fields(conn, title="x", price=None, id=book.id + 1) == 0


async def test_upsert_keeps_or_replaces_the_title(conn: Conn) -> None:
    author = await new_author(conn)
    args = {"id": 77, "author_id": author.id, "title": "One", "price": Decimal("1.00")}
    first = await bq.upsert_book_title(conn, **args, new_title=None)
    assert first == bq.UpsertBookTitleRow(77, "One")
    kept = await bq.upsert_book_title(conn, **{**args, "title": "Ignored"}, new_title=None)
    assert kept == bq.UpsertBookTitleRow(77, "One")
    replaced = await bq.upsert_book_title(conn, **args, new_title="Two")
    assert replaced == bq.UpsertBookTitleRow(77, "Two")
