"""The PATCH pattern (lib/http/patch.py, docs/recipes.md) end to end on real PostgreSQL.

tests/codegen/patch_pg holds a table with required and nullable columns and its UPDATE in
the documented shape, compiled by our codegen; a small aiohttp app parses PATCH bodies with
`PatchModel` and calls the generated query with `patch_args`. Absent keeps, null clears
a nullable column, a value sets, null for a required column is a 400.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import pytest
from aiohttp import web
from pydantic import Field

from lib.http import middleware as mw
from lib.http.body import parse_body
from lib.http.fields import single_line
from lib.http.jsonio import data
from lib.http.patch import Keep, PatchModel, patch_args
from tests.codegen.patch_pg.db import listings as q
from tests.codegen.patch_pg.db.models import Listing
from tests.servers import DatabaseFactory
from tools import sqlc
from tools.sqlc_types import apply_schema

SCHEMA = Path(__file__).parent / "patch_pg" / "schema.sql"
Money = Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=2)]


class ListingPatch(PatchModel):
    title: Annotated[str, single_line(100)] | Keep = None
    price: Money | Keep = None
    note: Annotated[str, single_line(500)] | None = None
    discount: Money | None = None


POOL = web.AppKey("pool", asyncpg.Pool)


async def patch_listing(request: web.Request) -> web.Response:
    body = await parse_body(request, ListingPatch)
    async with request.app[POOL].acquire() as conn:
        row = await q.update_listing(conn, id=int(request.match_info["id"]), **patch_args(body))
    if row is None:
        raise web.HTTPNotFound
    return data(row)


@pytest.fixture(scope="module")
def dsn(databases: DatabaseFactory) -> str:
    created = databases.create("patch_pg", "postgresql")
    apply_schema(created, [SCHEMA])
    return created


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(dsn, min_size=1, max_size=2) as created:
        yield created


@pytest.fixture
async def client(aiohttp_client: Any, pool: asyncpg.Pool) -> Any:
    app = web.Application(middlewares=[mw.request_id_middleware, mw.error_middleware])
    app[POOL] = pool
    app.router.add_patch("/listings/{id}", patch_listing)
    return await aiohttp_client(app)


async def full_listing(pool: asyncpg.Pool) -> Listing:
    async with pool.acquire() as conn:
        row = await q.create_listing(
            conn, title="Sofa", price=Decimal("120.00"), note="blue", discount=Decimal("10.00")
        )
    assert row is not None
    return row


async def stored(pool: asyncpg.Pool, listing_id: int) -> Listing:
    async with pool.acquire() as conn:
        row = await q.get_listing(conn, id=listing_id)
    assert row is not None
    return row


async def test_absent_fields_keep_their_values(client: Any, pool: asyncpg.Pool) -> None:
    listing = await full_listing(pool)
    resp = await client.patch(f"/listings/{listing.id}", json={"title": "Armchair"})
    assert resp.status == 200, await resp.text()
    after = await stored(pool, listing.id)
    assert (after.title, after.price, after.note, after.discount, after.version) == (
        "Armchair", Decimal("120.00"), "blue", Decimal("10.00"), 2,
    )  # fmt: skip
    assert (await resp.json())["data"]["note"] == "blue"


async def test_null_clears_a_nullable_field(client: Any, pool: asyncpg.Pool) -> None:
    listing = await full_listing(pool)
    resp = await client.patch(f"/listings/{listing.id}", json={"note": None})
    assert resp.status == 200, await resp.text()
    after = await stored(pool, listing.id)
    assert (after.title, after.price, after.note, after.discount) == (
        "Sofa", Decimal("120.00"), None, Decimal("10.00"),
    )  # fmt: skip
    resp = await client.patch(f"/listings/{listing.id}", json={"discount": None, "price": 99})
    assert resp.status == 200, await resp.text()
    after = await stored(pool, listing.id)
    assert (after.price, after.note, after.discount, after.version) == (
        Decimal("99.00"), None, None, 3,
    )  # fmt: skip


async def test_a_value_sets_a_cleared_field(client: Any, pool: asyncpg.Pool) -> None:
    listing = await full_listing(pool)
    assert (await client.patch(f"/listings/{listing.id}", json={"note": None})).status == 200
    resp = await client.patch(
        f"/listings/{listing.id}", json={"note": "  red  ", "discount": "2.50"}
    )
    assert resp.status == 200, await resp.text()
    after = await stored(pool, listing.id)
    assert (after.title, after.note, after.discount) == ("Sofa", "red", Decimal("2.50"))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": None}, "title"),
        ({"price": None, "note": "x"}, "price"),
        ({}, "body"),
        ({"note": "\u3000"}, "note"),
        ({"colour": "red"}, "colour"),
    ],
    ids=["null title", "null price", "empty", "blank note", "unknown field"],
)
async def test_invalid_patches_are_400_and_change_nothing(
    client: Any, pool: asyncpg.Pool, body: dict[str, Any], field: str
) -> None:
    listing = await full_listing(pool)
    resp = await client.patch(f"/listings/{listing.id}", json=body)
    assert resp.status == 400, await resp.text()
    problem = await resp.json()
    assert problem["code"] == "VALIDATION_ERROR"
    assert [e["field"] for e in problem["errors"]] == [field]
    assert await stored(pool, listing.id) == listing


def test_the_document_shows_null_only_where_it_clears() -> None:
    schema = ListingPatch.model_json_schema()
    props = schema["properties"]
    assert schema["minProperties"] == 1
    assert schema["additionalProperties"] is False
    assert props["title"]["type"] == "string"
    assert "default" not in props["title"]
    assert {"type": "null"} in props["note"]["anyOf"]
    assert props["note"]["default"] is None


def test_patch_args_match_the_generated_query() -> None:
    body = ListingPatch.model_validate({"note": None, "price": "5"})
    assert patch_args(body) == {
        "title": None, "price": Decimal("5"),
        "note": None, "set_note": True,
        "discount": None, "set_discount": False,
    }  # fmt: skip


def test_generated_code_is_current() -> None:
    sqlc.check("tests/codegen/patch_pg")  # `make codegen-golden` regenerates it
