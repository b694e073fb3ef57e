"""`model_type: pydantic` and `attrs`: the pg case generated for asyncpg with pydantic
models (tests/codegen/golden/pydantic) and the mysql case for aiomysql with attrs classes
(tests/codegen/golden/attrs), run against the real servers: the same values and types as
the dataclass goldens (pydantic's rows built by name, validated: its model_construct is
slower), a page, an embed, a batch."""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import attrs
import pydantic
import pytest

from tests.codegen import test_runtime_mysql as my
from tests.codegen import test_runtime_pg as pg
from tests.codegen.golden.attrs import gadgets as gq
from tests.codegen.golden.attrs.models import Gadget, GadgetsKind
from tests.codegen.golden.pydantic import authors as q
from tests.codegen.golden.pydantic import books as bq
from tests.codegen.golden.pydantic.models import Author, Mood
from tests.servers import DatabaseFactory
from tools.sqlc_types import apply_schema


@pytest.fixture(scope="module")
async def pg_conn(databases: DatabaseFactory) -> AsyncIterator[pg.Conn]:
    dsn = databases.create("cg_pydantic", "postgresql")
    apply_schema(dsn, [pg.SCHEMA])
    conn = await pg.connect(dsn)
    yield conn
    await conn.close()


@pytest.fixture(scope="module")
async def my_conn(databases: DatabaseFactory) -> AsyncIterator[my.Conn]:
    dsn = databases.create("cg_attrs", "mysql")
    apply_schema(dsn, [my.SCHEMA])
    conn = await my.connect(dsn)
    yield conn
    conn.close()


async def new_author(conn: pg.Conn, **kw: Any) -> Author:
    args = {"name": "a", "mood": Mood.HAPPY, "tags": [], "active": True, "created_at": pg.T0}
    author = await q.create_author(conn, **{**args, **pg.NULLS, **kw})
    assert isinstance(author, Author)
    return author


async def test_pydantic_rows_hold_every_type(pg_conn: pg.Conn) -> None:
    await pg_conn.execute("TRUNCATE books, authors RESTART IDENTITY CASCADE")
    full = {k: (Mood(v) if k == "mood" else v) for k, v in pg.FULL.items()}
    created = await new_author(pg_conn, **full)
    got = await q.get_author(pg_conn, id=created.id)
    assert got == created
    assert isinstance(got, pydantic.BaseModel)
    assert {k: getattr(got, k) for k in full} == full
    assert type(got.mood) is Mood
    assert got.model_fields_set == set(Author.model_fields)  # every field given
    empty = await new_author(pg_conn, name="Nul")
    assert {k: getattr(empty, k) for k in pg.NULLS} == pg.NULLS
    assert typing.get_type_hints(q.get_author)["return"] == Author | None
    # the read path validates as a hand-built model does
    with pytest.raises(pydantic.ValidationError):
        q.ListAuthorsByMoodRow(id="x", name="a", mood=Mood.SAD)  # type: ignore[arg-type]


async def test_pydantic_page_embed_batch_and_json(pg_conn: pg.Conn) -> None:
    await pg_conn.execute("TRUNCATE books, authors RESTART IDENTITY CASCADE")
    author = await new_author(pg_conn, meta={"k": [1, {"deep": None}]})
    book = await bq.create_book(pg_conn, author_id=author.id, title="T", price=Decimal("2.00"))
    assert book is not None
    page = await bq.page_books(pg_conn, row_offset=0, row_limit=10)
    assert page is not None
    assert (page.total, page.rows) == (1, [book])
    assert page.model_dump()["rows"][0]["title"] == "T"
    joined = await q.authors_with_books(pg_conn)
    assert joined == [q.AuthorsWithBooksRow(id=author.id, name="a", title="T", price=book.price)]
    batch = await q.get_authors_batch(pg_conn, [q.GetAuthorsBatchParams(id=author.id)])
    assert batch == [q.GetAuthorsBatchRow(id=author.id, name="a")]
    embedded = await q.books_with_author(pg_conn)
    assert [(r.books, r.authors.id) for r in embedded] == [(book, author.id)]
    got = await q.get_author(pg_conn, id=author.id)
    assert got is not None
    assert got.meta == {"k": [1, {"deep": None}]}
    assert Author.model_validate(got.model_dump()) == got  # what was built is valid


async def test_attrs_rows_round_trip_on_mysql(my_conn: my.Conn) -> None:
    await my.sql(my_conn, "DELETE FROM parts")
    await my.sql(my_conn, "DELETE FROM gadgets")
    args: dict[str, Any] = {"name": "g", "kind": GadgetsKind.TOOL, "active": True, **my.NULLS}
    full = {k: (GadgetsKind(v) if k == "kind" else v) for k, v in my.FULL.items()}
    new_id = await gq.create_gadget(my_conn, **{**args, **full})
    got = await gq.get_gadget(my_conn, id=new_id)
    assert isinstance(got, Gadget)
    assert attrs.has(Gadget)
    assert {k: getattr(got, k) for k in full} == full
    await gq.insert_part(my_conn, gadget_id=new_id, label="p")
    embedded = await gq.parts_with_gadget(my_conn)
    assert [(r.parts.label, r.gadgets.id) for r in embedded] == [("p", new_id)]
    assert attrs.asdict(embedded[0])["gadgets"]["name"] == full["name"]
    page = await gq.page_gadgets(my_conn, limit=5)
    assert page is not None
    assert page.total == 1
