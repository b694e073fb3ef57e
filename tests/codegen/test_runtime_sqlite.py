"""The SQLite goldens run on real SQLite databases (a file per test, under tmp_path): the
sqlite3 (sync, dataclass) and aiosqlite (async, msgspec) code of tests/codegen/sqlite does
every command, converts every declared type both ways, binds a slice's values, refuses
nothing it generated, and says Optional exactly where a NULL can come back."""

from __future__ import annotations

import datetime
import sqlite3
import typing
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiosqlite
import msgspec
import pytest

from tests.codegen.golden.aiosqlite import authors as aq
from tests.codegen.golden.aiosqlite import books as abq
from tests.codegen.golden.sqlite import authors as q
from tests.codegen.golden.sqlite import books as bq
from tests.codegen.golden.sqlite.models import Author

SCHEMA = Path(__file__).parent / "sqlite" / "schema.sql"
BORN = datetime.date(1970, 1, 2)
SEEN = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
FULL = {
    "bio": "b",
    "born": BORN,
    "seen_at": SEEN,
    "rating": 4.5,
    "photo": b"\x00\xff",
    "active": True,
    "price": 12,
    "profile": {"a": [1, None]},
}


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(tmp_path / "t.db")
    db.executescript(SCHEMA.read_text())
    yield db
    db.close()


@pytest.fixture
async def aconn(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    async with aiosqlite.connect(tmp_path / "a.db") as db:
        await db.executescript(SCHEMA.read_text())
        yield db


def test_sqlite3_round_trips_every_type(conn: sqlite3.Connection) -> None:
    created = q.create_author(conn, name="n", **FULL)  # type: ignore[arg-type]
    assert isinstance(created, Author)
    assert (created.born, created.seen_at, created.active) == (BORN, SEEN, True)
    assert created.profile == {"a": [1, None]}
    assert created.photo == b"\x00\xff"
    assert q.get_author(conn, id=created.id) == created
    assert q.get_author(conn, id=created.id + 100) is None
    assert q.count_authors(conn) == 1


def test_sqlite3_commands(conn: sqlite3.Connection) -> None:
    first = q.add_author(conn, name="ann")
    second = q.add_author(conn, name="bob")
    assert second == first + 1  # :execlastid is the rowid
    q.add_authors(conn, [q.AddAuthorsParams("cy", 2.0), q.AddAuthorsParams("di", 50.0)])
    assert [a.name for a in q.list_authors(conn, pattern="%")] == ["ann", "bob", "cy", "di"]
    assert [a.name for a in q.iter_list_authors(conn, pattern="b%")] == ["bob"]
    q.rename_author(conn, name="bo", id=second)
    assert q.deactivate(conn, rating=1.0) == 3  # ?1 bound twice: 0 < 1 (x2) and 50 > 10
    active = q.authors_by_ids(conn, ids=[first, second, second + 1, second + 2], active=False)
    assert [a.name for a in active] == ["ann", "bo", "di"]
    assert q.authors_by_ids(conn, ids=[], active=False) == []  # an empty slice: no row
    evil = q.authors_by_ids(conn, ids=["1) OR (1=1"], active=False)  # type: ignore[list-item]
    assert evil == []  # bound as a value, never spliced into the SQL
    batches = q.authors_by_ids_batch(conn, [q.AuthorsByIdsBatchParams(2.0)] * 2)
    assert [[a.name for a in b] for b in batches] == [["cy", "di"]] * 2
    ids = q.author_by_name(conn, [q.AuthorByNameParams("cy"), q.AuthorByNameParams("zz")])
    assert ids == [second + 1, None]
    result = q.add_book(conn, author_id=first, title="t")
    assert (result.rows_affected, result.last_insert_id) == (1, 1)
    rows = bq.author_books(conn)
    assert rows[0] == bq.AuthorBooksRow("ann", "t", 1)
    assert rows[1] == bq.AuthorBooksRow("bo", None, None)  # the outer join's NULLs
    assert bq.book_counts(conn)[:2] == [bq.BookCountsRow(first, 1), bq.BookCountsRow(second, 0)]
    both = bq.book_with_author(conn, id=1)
    assert both is not None
    assert both.books.title == "t"
    assert both.authors.name == "ann"


def test_expressions_are_typed_by_sqlite_rules(conn: sqlite3.Connection) -> None:
    empty = bq.author_stats(conn, active=True)  # no row matches: one row, NULLs but COUNT
    assert empty == bq.AuthorStatsRow(0, None, None, None, 0.0, None, None, 3, None)
    q.add_authors(conn, [q.AddAuthorsParams("b", 2.0), q.AddAuthorsParams("a", 3.5)])
    stats = bq.author_stats(conn, active=True)
    assert stats is not None
    assert stats == bq.AuthorStatsRow(2, 3.5, 3, 2.75, 0.0, "a!", stats.name, 3, stats.rating_text)
    assert isinstance(stats.id_sum, int)  # SUM over INTEGER: an int, as annotated
    hints = typing.get_type_hints(bq.AuthorStatsRow)
    assert (hints["authors"], hints["id_sum"]) == (int, int | None)
    assert hints["price_total"] == float | None  # TOTAL of Inf and -Inf: NaN, read as NULL
    assert hints["name"] == str | None  # a bare column of an aggregate: NULL over no rows


def test_annotations_say_optional_exactly_where_null_comes_back() -> None:
    hints = typing.get_type_hints(bq.AuthorBooksRow)
    assert hints["name"] is str  # NOT NULL, the outer join's preserved side
    assert hints["title"] == str | None  # NOT NULL, through the LEFT JOIN
    assert typing.get_type_hints(bq.BookCountsRow)["books"] is int  # COUNT: never NULL
    author = typing.get_type_hints(Author)
    assert author["id"] is int  # INTEGER PRIMARY KEY: the rowid
    assert author["price"] == int | float | None  # NUMERIC affinity
    assert author["extra"] == int | float | str | bytes | None  # no declared type


async def test_aiosqlite_runs_the_same_queries(aconn: aiosqlite.Connection) -> None:
    created = await aq.create_author(aconn, name="n", **FULL)  # type: ignore[arg-type]
    assert isinstance(created, msgspec.Struct)
    assert await aq.get_author(aconn, id=created.id) == created
    other = await aq.add_author(aconn, name="m")
    await aq.add_authors(aconn, [aq.AddAuthorsParams("x", 1.0)])
    names = [a.name async for a in aq.iter_list_authors(aconn, pattern="%")]
    assert names == ["n", "m", "x"]
    found = await aq.authors_by_ids(aconn, ids=[created.id, other], active=True)
    assert [a.id for a in found] == [created.id, other]
    assert await aq.deactivate(aconn, rating=0.5) == 1  # m: rating 0
    result = await aq.add_book(aconn, author_id=other, title="t")
    assert result.last_insert_id == 1
    assert (await abq.book_counts(aconn))[1] == abq.BookCountsRow(other, 1)
    batch = await aq.author_by_name(aconn, [aq.AuthorByNameParams("x")])
    assert batch == [other + 1]
