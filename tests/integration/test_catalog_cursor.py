"""GET /v1/services?cursor= and GET /v1/providers/{id}/services?cursor=: walking every
ordering by `meta.next_cursor` gives exactly the rows of the one big page, in its order
(ties on the key broken by id, a filter), and a cursor that is not one of ours, not for
this ordering, or given with `page`, is a 400; `page` is bounded (lib/http/cursor.py)."""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from lib.http.cursor import MAX_OFFSET
from services.catalog.app import create_app
from services.catalog.schemas import OFFERED_KEYS, SERVICE_KEYS
from tests import pg
from tests.integration.catalog_support import catalog_settings

PROVIDER = uuid.UUID("00000000-0000-4000-8000-00000000c0de")
SERVICES = 37
# 8 subcategories; names, prices and creation times tie across them (one statement: one now())
TAXONOMY = """
WITH t AS (INSERT INTO category_types (name) VALUES ('T') RETURNING id),
     c AS (INSERT INTO categories (type_id, name) SELECT id, 'C' FROM t RETURNING id),
     s AS (INSERT INTO subcategories (category_id, name)
           SELECT c.id, 'S' || k FROM c, generate_series(0, 7) AS k RETURNING id, name)
INSERT INTO services (subcategory_id, name, base_price)
SELECT s.id, 'Service ' || n / 8, 10 + n % 4 + 0.25
FROM generate_series(1, $1::integer) AS n JOIN s ON s.name = 'S' || n % 8
"""
LINKS = "INSERT INTO provider_services (provider_id, service_id) SELECT $1, id FROM services"


@pytest.fixture(scope="module")
async def cursor_dsn(migrated_db: Callable[[str], str]) -> str:
    dsn = migrated_db("catalog")
    async with pg.connected(dsn) as conn:
        await conn.execute(TAXONOMY, SERVICES)
        await conn.execute(LINKS, PROVIDER)
    return dsn


@pytest.fixture
async def client(aiohttp_client: Any, cursor_dsn: str) -> Any:
    return await aiohttp_client(create_app(catalog_settings(cursor_dsn)))


async def get(client: Any, path: str, query: str, status: int = 200) -> Any:
    resp = await client.get(f"{path}?{query}")
    assert resp.status == status, await resp.text()
    return await resp.json()


async def walk(client: Any, path: str, base: str) -> tuple[list[str], list[str]]:
    """(the ids of the one big page, the ids walked 4 at a time by cursor)."""
    everything = await get(client, path, f"{base}&limit=1000")
    assert everything["meta"]["next_cursor"] is None
    walked: list[str] = []
    body = await get(client, path, f"{base}&limit=4")
    assert body["meta"]["page"] == 1
    assert body["meta"]["total"] == everything["meta"]["total"]
    while True:
        walked += [row["id"] for row in body["data"]]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return [row["id"] for row in everything["data"]], walked
        body = await get(client, path, f"{base}&limit=4&cursor={cursor}")
        assert set(body["meta"]) == {"limit", "next_cursor"}


async def a_subcategory(client: Any) -> str:
    """A subcategory with the most services (5 of the 37; some have 4)."""
    rows = (await get(client, "/v1/services", "limit=1000"))["data"]
    counts = Counter(str(row["subcategory_id"]) for row in rows)
    return max(sorted(counts), key=counts.__getitem__)


@pytest.mark.parametrize("orderby", SERVICE_KEYS)
@pytest.mark.parametrize("sort", ["asc", "desc"])
@pytest.mark.parametrize("filtered", [False, True])
async def test_the_cursor_walks_every_services_ordering(
    client: Any, orderby: str, sort: str, filtered: bool
) -> None:
    base = f"orderby={orderby}&sort={sort}"
    if filtered:
        base += f"&subcategory_id={await a_subcategory(client)}"
    expected, walked = await walk(client, "/v1/services", base)
    assert walked == expected
    assert len(expected) > 4 if filtered else len(expected) == SERVICES


@pytest.mark.parametrize("orderby", OFFERED_KEYS)
@pytest.mark.parametrize("sort", ["asc", "desc"])
async def test_the_cursor_walks_a_providers_services(client: Any, orderby: str, sort: str) -> None:
    path = f"/v1/providers/{PROVIDER}/services"
    expected, walked = await walk(client, path, f"orderby={orderby}&sort={sort}")
    assert walked == expected
    assert len(expected) == SERVICES


@pytest.mark.parametrize("path", ["/v1/services", f"/v1/providers/{PROVIDER}/services"])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("cursor=nonsense", "cursor"),
        ("cursor=", "cursor"),
        ("cursor=" + "A" * 2000, "cursor"),
        (
            "page=2&cursor=WyJuYW1lIiwiYXNjIiwiUyIsIjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCJd",
            "cursor",
        ),
        (f"limit=1000&page={MAX_OFFSET // 1000 + 2}", "page"),
    ],
)
async def test_bad_cursors_and_deep_pages_are_400(
    client: Any, path: str, query: str, field: str
) -> None:
    body = await get(client, path, query, 400)
    assert [e["field"] for e in body["errors"]] == [field]


async def test_a_cursor_is_bound_to_its_ordering(client: Any) -> None:
    cursor = (await get(client, "/v1/services", "limit=2"))["meta"]["next_cursor"]
    assert (await get(client, "/v1/services", f"limit=2&cursor={cursor}"))["data"]
    for other in ("orderby=base_price", "sort=desc", "orderby=created_at"):
        body = await get(client, "/v1/services", f"limit=2&{other}&cursor={cursor}", 400)
        assert body["errors"][0]["field"] == "cursor"
    # the same position spelled otherwise (padding) is not one we issued
    body = await get(client, "/v1/services", f"limit=2&cursor={cursor}%3D%3D", 400)
    assert body["errors"][0]["field"] == "cursor"
    # a price cursor whose value is no decimal
    raw = json.dumps(["base_price", "asc", "cheap", str(PROVIDER)], separators=(",", ":"))
    token = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    body = await get(client, "/v1/services", f"orderby=base_price&cursor={token}", 400)
    assert body["errors"][0]["field"] == "cursor"
