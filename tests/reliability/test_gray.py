"""Gray failures between services: a dependency that is slow (injected latency), a black
hole (connects, never answers), resets (accepts, then closes), or frozen (SIGSTOP of the
real process). Orders runs in-process with its clients of users (optional: the customer's
name) and catalog (required) going through a small TCP proxy (tests/proxy.py) to the real
processes. Every answer comes within the bound the configured timeout, retries and breaker
give; the breaker opens after its threshold and lets a trial through after its reset; an
optional dependency down degrades (no name), a required one is a 503 with Retry-After; no
acknowledged order is lost and a refused one writes nothing.

Bounded in `make test` (a few calls per fault); RELIABILITY_FULL=1 makes more calls."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lib.auth.principal import Role
from services.orders.app import create_app as orders_app
from tests import pg
from tests.integration.chat_support import eventually
from tests.integration.orders_support import order_body, orders_settings
from tests.integration.users_support import make_user
from tests.proxy import TcpProxy
from tests.reliability.budget import FULL
from tests.reliability.stack import bearer
from tests.reliability.world import catalog_service
from tools.local.ports import free_port
from tools.local.service_process import ServiceProcess

TIMEOUT = 0.4  # <dependency>_TIMEOUT of orders here: one attempt
THRESHOLD = 2  # <dependency>_BREAKER_THRESHOLD
RESET = 1.0  # <dependency>_BREAKER_RESET
ATTEMPTS = 2  # the client's attempts of an idempotent call (lib/clients/http.py)
BACKOFF = 0.05  # the retry's largest first backoff (lib/resilience/retry.py)
MARGIN = 2.0  # the in-process app's own work on a loaded machine
CALLS = 12 if FULL else 4  # calls during one fault, past the threshold
FAULTS = ("latency", "black_hole", "reset", "frozen")


def bound(attempts: int) -> float:
    """The longest a call through the client may take: every attempt times out."""
    return attempts * TIMEOUT + BACKOFF + MARGIN


@asynccontextmanager
async def fault(kind: str, proxy: TcpProxy, process: ServiceProcess) -> AsyncIterator[None]:
    """`kind` between orders and the process, until the block ends."""
    if kind == "latency":
        proxy.delay = TIMEOUT  # a round trip: twice the attempt's timeout
    elif kind == "black_hole":
        proxy.hold()
    elif kind == "reset":  # open connections cut; new ones accepted, then closed
        port, proxy.target = proxy.port, ("127.0.0.1", free_port())
        await proxy.stop()
        await proxy.start(port)
    else:
        os.kill(process.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        proxy.delay = 0.0
        proxy.release()
        proxy.target = ("127.0.0.1", int(process.url.rsplit(":", 1)[1]))
        if kind == "frozen":
            os.kill(process.proc.pid, signal.SIGCONT)


async def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    resp = await call()
    return resp, time.monotonic() - started


async def breaker_state(client: Any, dependency: str) -> float:
    """orders' own breaker of `dependency`: the registry is the process's, so another app
    built in this process (users' export also has a breaker of catalog) has its series too."""
    text = await (await client.get("/metrics")).text()
    wanted = {"service": "orders", "dependency": dependency}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "circuit_breaker_state" and sample.labels == wanted:
                return float(sample.value)
    raise AssertionError(f"no circuit_breaker_state for orders -> {dependency}")


@pytest.fixture
async def world(
    aiohttp_client: Any,
    migrated_db: Callable[[str], str],
    users: ServiceProcess,
    users_dsn: str,
    catalog: ServiceProcess,
) -> AsyncIterator[dict[str, Any]]:
    """Orders in-process, users and catalog behind a proxy each; a real customer."""
    proxies = {
        name: await TcpProxy("127.0.0.1", int(p.url.rsplit(":", 1)[1])).start()
        for name, p in (("users", users), ("catalog", catalog))
    }
    dsn = migrated_db("orders")
    users_url, catalog_url = (f"http://127.0.0.1:{proxies[n].port}" for n in ("users", "catalog"))
    settings = orders_settings(
        dsn,
        users_url=users_url,
        users_timeout=TIMEOUT,
        users_breaker_threshold=THRESHOLD,
        users_breaker_reset=RESET,
        catalog_url=catalog_url,
        catalog_timeout=TIMEOUT,
        catalog_breaker_threshold=THRESHOLD,
        catalog_breaker_reset=RESET,
    )
    client = await aiohttp_client(orders_app(settings))
    customer = await make_user(users_dsn, Role.CUSTOMER)
    async with aiohttp.ClientSession() as http:
        service_id = await catalog_service(http, catalog.url)
    try:
        yield {
            "orders": client,
            "dsn": dsn,
            "proxies": proxies,
            "processes": {"users": users, "catalog": catalog},
            "headers": bearer(Role.CUSTOMER, customer),
            "body": order_body(service_id),
        }
    finally:
        for proxy in proxies.values():
            proxy.release()
            await proxy.stop()


async def stored(dsn: str) -> set[str]:
    return {str(r[0]) for r in await pg.fetch(dsn, "SELECT id FROM orders")}


@pytest.mark.parametrize("kind", FAULTS)
async def test_users_gray_orders_degrade_within_the_bound_and_recover(
    world: dict[str, Any], kind: str
) -> None:
    orders, headers, body = world["orders"], world["headers"], world["body"]

    async def create() -> Any:
        return await orders.post("/v1/orders", json=body, headers=headers)

    acknowledged: set[str] = set()

    async def created(resp: Any) -> dict[str, Any]:
        assert resp.status == 201, await resp.text()
        data: dict[str, Any] = (await resp.json())["data"]
        acknowledged.add(data["id"])
        return data

    assert (await created(await create()))["customer_name"] == "Ada Lovelace"
    async with fault(kind, world["proxies"]["users"], world["processes"]["users"]):
        for n in range(CALLS):
            resp, took = await timed(create)
            data = await created(resp)
            assert data["customer_name"] is None, (kind, n, data)  # degraded, not failed
            assert took < bound(ATTEMPTS), (kind, n, took)
        assert await breaker_state(orders, "users") == 1.0  # open after THRESHOLD failures
        resp, took = await timed(create)
        await created(resp)
        assert took < TIMEOUT + MARGIN  # open: no call, no wait

    async def named_again() -> bool:
        return (await created(await create()))["customer_name"] == "Ada Lovelace"

    await eventually(named_again, f"names back after {kind}", RESET + bound(ATTEMPTS) + MARGIN)
    assert await breaker_state(orders, "users") == 0.0
    assert await stored(world["dsn"]) == acknowledged  # nothing lost, nothing extra


@pytest.mark.parametrize("kind", FAULTS)
async def test_catalog_gray_orders_refuse_503_within_the_bound_and_write_nothing(
    world: dict[str, Any], kind: str
) -> None:
    orders, headers, body = world["orders"], world["headers"], world["body"]

    async def create() -> Any:
        return await orders.post("/v1/orders", json=body, headers=headers)

    first = await create()
    assert first.status == 201, await first.text()
    before = await stored(world["dsn"])
    async with fault(kind, world["proxies"]["catalog"], world["processes"]["catalog"]):
        for n in range(CALLS):
            resp, took = await timed(create)
            assert resp.status == 503, (kind, n, await resp.text())
            assert int(resp.headers["Retry-After"]) >= 1
            assert (await resp.json())["code"] in ("SERVICE_UNAVAILABLE", "CIRCUIT_OPEN")
            assert took < bound(ATTEMPTS), (kind, n, took)
        assert await breaker_state(orders, "catalog") == 1.0  # open
    assert await stored(world["dsn"]) == before  # a refused order wrote nothing

    async def accepted() -> bool:
        resp = await create()
        return resp.status == 201

    await eventually(accepted, f"orders accepted after {kind}", RESET + bound(ATTEMPTS) + MARGIN)
    assert len(await stored(world["dsn"])) == len(before) + 1
    assert uuid.UUID(next(iter(before)))
