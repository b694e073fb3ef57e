"""`driver: psycopg-sync`: tests/codegen/golden/psycopg_sync (the pg case's queries for
psycopg 3's sync API with dataclasses), every command run against a real PostgreSQL on a
plain `psycopg.Connection`: plain functions, the same values and types as the async driver."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, TypeAlias

import psycopg
import pytest
from sqlc_fixup_runtime import ExecResult

from tests.codegen.golden.psycopg_sync import authors as q
from tests.codegen.golden.psycopg_sync import books as bq
from tests.codegen.golden.psycopg_sync.models import Author, Mood
from tests.codegen.test_runtime_pg import FULL, NULLS, SCHEMA, T0
from tests.servers import DatabaseFactory
from tools.local.dbadmin import psycopg_dsn
from tools.sqlc_types import apply_schema

Conn: TypeAlias = "psycopg.Connection[Any]"


@pytest.fixture(scope="module")
def dsn(databases: DatabaseFactory) -> str:
    created = databases.create("cg_psysync", "postgresql")
    apply_schema(created, [SCHEMA])
    return created


@pytest.fixture
def conn(dsn: str) -> Iterator[Conn]:
    with psycopg.connect(psycopg_dsn(dsn), autocommit=True) as connection:
        connection.execute("TRUNCATE books, authors RESTART IDENTITY CASCADE")
        yield connection


def new_author(conn: Conn, **kw: Any) -> Author:
    args = {"name": "a", "mood": Mood.HAPPY, "tags": [], "active": True, "created_at": T0}
    author = q.create_author(conn, **{**args, **NULLS, **kw})
    assert isinstance(author, Author)
    return author


def test_functions_are_plain_and_rows_are_dataclasses(conn: Conn) -> None:
    assert not inspect.iscoroutinefunction(q.get_author)
    assert inspect.isgeneratorfunction(q.iter_list_authors_by_mood)
    created = new_author(conn, **FULL)
    got = q.get_author(conn, id=created.id)
    assert got == created
    assert dataclasses.is_dataclass(got)
    assert {k: getattr(got, k) for k in FULL} == FULL
    assert type(got.mood) is Mood
    empty = new_author(conn, name="Nul")
    assert {k: getattr(empty, k) for k in NULLS} == NULLS
    assert typing.get_type_hints(q.get_author)["return"] == Author | None


def test_many_stream_and_repeated_parameters(conn: Conn) -> None:
    a = new_author(conn, name="a", mood=Mood.SAD)
    b = new_author(conn, name="b")
    assert [x.id for x in q.list_authors_by_ids(conn, ids=[b.id, a.id, 99])] == [a.id, b.id]
    streamed = list(q.iter_list_authors_by_mood(conn, mood=Mood.SAD))
    assert streamed == [q.ListAuthorsByMoodRow(a.id, "a", Mood.SAD)]
    stats = q.author_stats(conn, mood=None)  # `mood = $1 OR $1 IS NULL`: typed once
    assert stats is not None
    assert stats.total == 2


def test_exec_commands(conn: Conn) -> None:
    a = new_author(conn, age=30)
    new_id = q.create_author_id(conn, name="x")
    assert new_id == a.id + 1
    q.rename_author(conn, name="renamed", id=a.id)
    assert q.set_bio(conn, bio="b%s", min_age=18) == 1  # a literal % passes through
    got = q.get_author(conn, id=a.id)
    assert got is not None
    assert (got.name, got.bio) == ("renamed", "b%s")
    assert q.delete_author(conn, id=new_id) == ExecResult(1, None)
    assert q.delete_author(conn, id=new_id) == ExecResult(0, None)


def test_copyfrom_and_batches(conn: Conn) -> None:
    rows = [
        q.CopyAuthorsParams("c1", 20, Decimal("1.50"), Mood.SO_SO),
        q.CopyAuthorsParams("c2", None, None, Mood.SAD),
    ]
    assert q.copy_authors(conn, rows) == 2
    q.bump_ages(conn, [q.BumpAgesParams(1), q.BumpAgesParams(1)])
    one = q.get_authors_batch(conn, [q.GetAuthorsBatchParams(1), q.GetAuthorsBatchParams(9)])
    assert one == [q.GetAuthorsBatchRow(1, "c1"), None]
    first = q.get_author(conn, id=1)
    assert first is not None
    assert (first.age, first.salary, first.mood) == (22, Decimal("1.50"), Mood.SO_SO)
    bq.create_book(conn, author_id=1, title="T", price=Decimal("2.00"))
    many = q.books_of_authors(conn, [q.BooksOfAuthorsParams(1), q.BooksOfAuthorsParams(2)])
    assert [[r.title for r in found] for found in many] == [["T"], []]


def test_page_and_casts(conn: Conn) -> None:
    author = new_author(conn)
    book = bq.create_book(conn, author_id=author.id, title="Draft", price=Decimal("5.00"))
    page = bq.page_books(conn, row_offset=0, row_limit=10)
    assert page is not None
    assert (page.total, page.rows) == (1, [book])
    assert bq.update_book_fields(conn, title=None, price=Decimal("7.50"), id=book.id) == 1
    upserted = bq.upsert_book_title(
        conn, id=book.id, author_id=author.id, title="x", price=Decimal(1), new_title=None
    )
    assert upserted == bq.UpsertBookTitleRow(book.id, "Draft")
