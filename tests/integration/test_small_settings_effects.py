"""The settings whose effect no other test observed: each changed here, its effect seen
(tests/unit/test_settings_observed.py requires every setting to be changed by some test)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from grpclib import GRPCError
from grpclib.const import Status

from lib.config import ServiceSettings
from lib.db.connecting import connect
from lib.errors import ServiceUnavailable
from lib.http.revocation_record import PATH, RevocationRecord
from services.chat.deps import PartiesCache
from services.chat.settings import ChatSettings
from services.orders.relay import OutboxRelay
from services.orders.settings import OrdersSettings
from services.points.rules import canonical_ids
from services.points.settings import PointsSettings
from tests.servers import Servers


@pytest.mark.parametrize("reset", [True, False])
async def test_db_pool_reset_decides_whether_session_state_outlives_a_lease(
    servers: Servers, reset: bool
) -> None:
    settings = ChatSettings(database_url=servers.pg_dsn, db_pool_reset=reset)
    db = await connect(settings.database_url, min_size=1, max_size=1, reset=settings.db_pool_reset)
    try:
        async with db.acquire() as conn:
            await conn.execute("SET statement_timeout = '7s'")
        async with db.acquire() as conn:  # the one pooled connection again
            seen = await conn.fetchval("SHOW statement_timeout")
    finally:
        await db.close()
    assert (seen == "7s") is not settings.db_pool_reset, seen


@pytest.mark.parametrize("size", [1, 2])
def test_orders_cache_size_bounds_the_parties_cache(size: int) -> None:
    settings = ChatSettings(database_url="", orders_cache_size=size, orders_cache_ttl=60.0)
    cache = PartiesCache(settings.orders_cache_ttl, settings.orders_cache_size)
    keys = [(uuid.uuid4(), uuid.uuid4()) for _ in range(2)]
    for key in keys:
        cache.put(key, None)
    assert cache.get(keys[1]) == (True, None)
    assert cache.get(keys[0])[0] is (size >= 2)  # the least recently used goes first


@pytest.mark.parametrize("cap", [2, 3])
def test_max_list_ids_caps_one_points_list_call(cap: int) -> None:
    settings = PointsSettings(database_url="", max_list_ids=cap)
    asked = [str(uuid.uuid4()) for _ in range(3)]
    if cap >= len(asked):
        assert set(canonical_ids(asked, settings.max_list_ids)) == set(asked)
        return
    with pytest.raises(GRPCError) as refused:
        canonical_ids(asked, settings.max_list_ids)
    assert refused.value.status is Status.INVALID_ARGUMENT
    assert f"at most {cap}" in str(refused.value.message)


@pytest.mark.parametrize(("batch", "retry_max"), [(5, 3.0), (40, 90.0)])
def test_outbox_batch_and_retry_max_shape_the_relay(batch: int, retry_max: float) -> None:
    settings = OrdersSettings(database_url="", outbox_batch=batch, outbox_retry_max=retry_max)
    relay = OutboxRelay(
        cast(Any, None),  # no round runs here: only what the settings decide
        cast(Any, None),
        interval=settings.outbox_interval,
        retry_max=settings.outbox_retry_max,
        call_timeout=settings.points_timeout,
        batch=settings.outbox_batch,
        service=settings.service,
    )
    assert relay.batch == batch
    assert relay.lease == settings.points_timeout * (batch + 1)  # the whole batch, leased
    late = max(relay.backoff(20) for _ in range(200))  # full jitter under the cap
    assert late <= retry_max < 2 * late  # the cap (200 draws all under half: 2**-200)
    assert max(relay.backoff(0) for _ in range(200)) <= min(retry_max, relay.first_retry)


@pytest.mark.parametrize(("record_timeout", "failures"), [(0.2, 1), (0.3, 2)])
async def test_revocation_record_timeout_and_failures_bound_the_fallback(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    record_timeout: float,
    failures: int,
) -> None:
    """users never answers: each ask gives up after REVOCATION_RECORD_TIMEOUT, and after
    REVOCATION_RECORD_FAILURES of them the breaker answers at once without asking."""
    asked: list[float] = []

    async def frozen(request: web.Request) -> web.Response:
        asked.append(time.monotonic())
        await asyncio.Event().wait()  # until the caller gives up and disconnects
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_get(PATH, frozen)
    server = await aiohttp_server(app)
    settings = ServiceSettings(
        service="t",
        database_url="",
        revocation_record_timeout=record_timeout,
        revocation_record_failures=failures,
    )
    record = RevocationRecord(
        str(server.make_url("/")),
        timeout=settings.revocation_record_timeout,
        failures=settings.revocation_record_failures,
        retry=settings.revocation_retry,
    )
    try:
        for _ in range(failures):
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable):
                await record(uuid.uuid4(), "token")
            assert time.monotonic() - started >= record_timeout * 0.9  # waited its timeout, no more
        with pytest.raises(ServiceUnavailable):  # the open breaker's, without asking
            await record(uuid.uuid4(), "token")
    finally:
        await record.close()
    assert len(asked) == failures  # the last ask was refused by the open breaker
