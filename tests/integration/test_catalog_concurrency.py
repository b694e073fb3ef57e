"""The catalog under contention: one If-Match, many writers; creates past the pool."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from services.catalog.app import create_app
from tests import pg
from tests.integration.catalog_support import ADMIN, catalog_settings, chain

WRITERS = 50
POOL_MAX = 10
ACQUIRE_TIMEOUT = 3.0


async def test_fifty_patches_with_one_if_match_one_wins(
    aiohttp_client: Any, catalog_dsn: str
) -> None:
    client = await aiohttp_client(create_app(catalog_settings(catalog_dsn)))
    service = (await chain(client))["service"]
    url = f"/v1/services/{service['id']}"
    prices = [f"{100 + i}.00" for i in range(WRITERS)]
    responses = await asyncio.gather(
        *(
            client.patch(url, json={"base_price": price}, headers={**ADMIN, "If-Match": '"1"'})
            for price in prices
        )
    )
    statuses = [r.status for r in responses]
    assert sorted(statuses) == [200] + [412] * (WRITERS - 1)
    winner = next(i for i, status in enumerate(statuses) if status == 200)
    won = (await responses[winner].json())["data"]
    assert (won["base_price"], won["version"]) == (prices[winner], 2)
    for r in responses:
        if r.status == 412:
            assert (await r.json())["code"] == "PRECONDITION_FAILED"
    final = await client.get(url)
    assert (await final.json())["data"] == won
    assert final.headers["ETag"] == '"2"'


async def test_three_times_the_pool_of_creates_are_all_answered(
    aiohttp_client: Any, catalog_dsn: str
) -> None:
    settings = catalog_settings(
        catalog_dsn, db_pool_max=POOL_MAX, db_acquire_timeout=ACQUIRE_TIMEOUT
    )
    client = await aiohttp_client(create_app(settings))
    sub_id = (await chain(client))["subcategory"]["id"]
    names = [f"Cap {uuid.uuid4().hex[:6]} {i}" for i in range(3 * POOL_MAX)]
    # each request waits at most one acquire timeout for a connection; generous margin
    async with asyncio.timeout(3 * ACQUIRE_TIMEOUT + 10):
        responses = await asyncio.gather(
            *(
                client.post(
                    "/v1/services",
                    json={"subcategory_id": sub_id, "name": name, "base_price": "10"},
                    headers=ADMIN,
                )
                for name in names
            )
        )
    assert [r.status for r in responses] == [201] * len(names)
    stored = await pg.fetchval(
        catalog_dsn, "SELECT count(*) FROM services WHERE name = ANY($1::text[])", names
    )
    assert stored == len(names)
