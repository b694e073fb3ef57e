"""The generated code of tests/codegen/golden/psycopg (the pg case's queries for psycopg 3
with msgspec Structs, ADR 0025), every command run against a real PostgreSQL on a plain
psycopg connection: exact values and exact Python types, as test_runtime_pg checks asyncpg's
(its values, FULL and NULLS, are test_runtime_pg's)."""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any, TypeAlias

import msgspec
import psycopg
import pytest

from lib.db.runtime import ExecResult
from tests.codegen.golden.psycopg import authors as q
from tests.codegen.golden.psycopg import books as bq
from tests.codegen.golden.psycopg.models import Author, Mood
from tests.codegen.test_runtime_pg import FULL, NULLS, SCHEMA, T0
from tests.servers import DatabaseFactory
from tools.local.dbadmin import psycopg_dsn
from tools.sqlc_types import apply_schema

Conn: TypeAlias = "psycopg.AsyncConnection[Any]"


@pytest.fixture(scope="module")
def dsn(databases: DatabaseFactory) -> str:
    created = databases.create("cg_psy", "postgresql")
    apply_schema(created, [SCHEMA])
    return created


@pytest.fixture
async def conn(dsn: str) -> AsyncIterator[Conn]:
    connection = await psycopg.AsyncConnection.connect(psycopg_dsn(dsn), autocommit=True)
    await connection.execute("TRUNCATE books, authors RESTART IDENTITY CASCADE")
    yield connection
    await connection.close()


async def new_author(conn: Conn, **kw: Any) -> Author:
    args = {"name": "a", "mood": Mood.HAPPY, "tags": [], "active": True, "created_at": T0}
    author = await q.create_author(conn, **{**args, **NULLS, **kw})
    assert isinstance(author, Author)
    return author


async def test_every_type_round_trips_as_a_struct(conn: Conn) -> None:
    created = await new_author(conn, **FULL)
    got = await q.get_author(conn, id=created.id)
    assert got == created
    assert isinstance(got, msgspec.Struct)
    assert {k: getattr(got, k) for k in FULL} == FULL
    assert type(got.mood) is Mood
    empty = await new_author(conn, name="Nul")
    assert {k: getattr(empty, k) for k in NULLS} == NULLS
    hints = typing.get_type_hints(q.get_author)
    assert hints["return"] == Author | None


async def test_many_stream_and_repeated_parameters(conn: Conn) -> None:
    a = await new_author(conn, name="a", mood=Mood.SAD)
    b = await new_author(conn, name="b")
    assert [x.id for x in await q.list_authors_by_ids(conn, ids=[b.id, a.id, 99])] == [a.id, b.id]
    streamed = [row async for row in q.iter_list_authors_by_mood(conn, mood=Mood.SAD)]
    assert streamed == [q.ListAuthorsByMoodRow(a.id, "a", Mood.SAD)]
    assert msgspec.json.encode(streamed[0]) == b'{"id":1,"name":"a","mood":"sad"}'
    # `mood = $1 OR $1 IS NULL`: one server parameter, typed once
    stats = await q.author_stats(conn, mood=None)
    assert stats is not None
    assert stats.total == 2


async def test_exec_commands(conn: Conn) -> None:
    a = await new_author(conn, age=30)
    new_id = await q.create_author_id(conn, name="x")
    assert new_id == a.id + 1
    await q.rename_author(conn, name="renamed", id=a.id)
    assert await q.set_bio(conn, bio="b%s", min_age=18) == 1  # a literal % passes through
    got = await q.get_author(conn, id=a.id)
    assert got is not None
    assert (got.name, got.bio) == ("renamed", "b%s")
    assert await q.delete_author(conn, id=new_id) == ExecResult(1, None)
    assert await q.delete_author(conn, id=new_id) == ExecResult(0, None)


async def test_copyfrom_and_batches(conn: Conn) -> None:
    rows = [
        q.CopyAuthorsParams("c1", 20, Decimal("1.50"), Mood.SO_SO),
        q.CopyAuthorsParams("c2", None, None, Mood.SAD),
    ]
    assert await q.copy_authors(conn, rows) == 2
    await q.bump_ages(conn, [q.BumpAgesParams(1), q.BumpAgesParams(1)])
    one = await q.get_authors_batch(conn, [q.GetAuthorsBatchParams(1), q.GetAuthorsBatchParams(9)])
    assert one == [q.GetAuthorsBatchRow(1, "c1"), None]
    first = await q.get_author(conn, id=1)
    assert first is not None
    assert (first.age, first.salary, first.mood) == (22, Decimal("1.50"), Mood.SO_SO)
    await bq.create_book(conn, author_id=1, title="T", price=Decimal("2.00"))
    many = await q.books_of_authors(conn, [q.BooksOfAuthorsParams(1), q.BooksOfAuthorsParams(2)])
    assert [[r.title for r in found] for found in many] == [["T"], []]


async def test_page_and_casts(conn: Conn) -> None:
    author = await new_author(conn)
    book = await bq.create_book(conn, author_id=author.id, title="Draft", price=Decimal("5.00"))
    page = await bq.page_books(conn, row_offset=0, row_limit=10)
    assert page is not None
    assert (page.total, page.rows) == (1, [book])
    assert await bq.update_book_fields(conn, title=None, price=Decimal("7.50"), id=book.id) == 1
    upserted = await bq.upsert_book_title(
        conn, id=book.id, author_id=author.id, title="x", price=Decimal(1), new_title=None
    )
    assert upserted == bq.UpsertBookTitleRow(book.id, "Draft")
