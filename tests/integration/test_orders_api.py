"""The orders API against real PostgreSQL and the real catalog app on loopback: every
route's good and bad paths, the state machines, visibility, idempotency, contention."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from lib.auth.principal import Role
from services.catalog.app import create_app as catalog_app
from services.orders.app import create_app
from tests import pg
from tests.integration.catalog_support import catalog_settings
from tests.integration.orders_support import (
    Caller,
    caller,
    catalog_service,
    offer_body,
    order_body,
    orders_settings,
)
from tests.proxy import TcpProxy

BREAKER_RESET = 1.0
CATALOG_TIMEOUT = 0.5


@pytest.fixture
async def catalog_server(aiohttp_server: Any, catalog_dsn: str) -> Any:
    return await aiohttp_server(catalog_app(catalog_settings(catalog_dsn)))


@pytest.fixture
async def catalog(aiohttp_client: Any, catalog_server: Any) -> Any:
    return await aiohttp_client(catalog_server)


@pytest.fixture
async def catalog_proxy(catalog_server: Any) -> AsyncIterator[TcpProxy]:
    proxy = await TcpProxy("127.0.0.1", catalog_server.port).start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def client(aiohttp_client: Any, orders_dsn: str, catalog_proxy: TcpProxy) -> Any:
    settings = orders_settings(
        orders_dsn,
        catalog_url=f"http://127.0.0.1:{catalog_proxy.port}",
        catalog_timeout=CATALOG_TIMEOUT,
        catalog_breaker_threshold=2,
        catalog_breaker_reset=BREAKER_RESET,
        db_pool_max=30,
    )
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def world(catalog: Any) -> dict[str, Any]:
    """A customer, two providers offering a new service, an outsider provider."""
    customer, p1, p2, outsider = (
        caller(Role.CUSTOMER),
        caller(Role.PROVIDER),
        caller(Role.PROVIDER),
        caller(Role.PROVIDER),
    )
    service_id = await catalog_service(catalog, p1.id, p2.id)
    return {"customer": customer, "p1": p1, "p2": p2, "outsider": outsider, "service": service_id}


async def create_order(client: Any, who: Caller, service_id: str, **kw: Any) -> dict[str, Any]:
    resp = await client.post("/v1/orders", json=order_body(service_id, **kw), headers=who.headers)
    assert resp.status == 201, await resp.text()
    made: dict[str, Any] = (await resp.json())["data"]
    assert resp.headers["ETag"] == f'"{made["version"]}"'
    return made


async def make_offer(client: Any, order_id: str, who: Caller, **kw: Any) -> dict[str, Any]:
    resp = await client.post(
        f"/v1/orders/{order_id}/offers", json=offer_body(**kw), headers=who.headers
    )
    assert resp.status == 201, await resp.text()
    made: dict[str, Any] = (await resp.json())["data"]
    return made


async def post(client: Any, path: str, who: Caller) -> tuple[int, dict[str, Any]]:
    resp = await client.post(path, headers=who.headers)
    return resp.status, await resp.json()


async def breaker_gauge(client: Any) -> float:
    """circuit_breaker_state{service="orders", dependency="catalog"} as /metrics shows it."""
    text = await (await client.get("/metrics")).text()
    found = re.search(
        r'^circuit_breaker_state\{dependency="catalog",service="orders"\} (\S+)$', text, re.M
    )
    assert found, text
    return float(found.group(1))


def nameless_orders() -> float:
    return (
        REGISTRY.get_sample_value("orders_created_without_name_total", {"service": "orders"}) or 0
    )


async def count(dsn: str, sql: str, *args: Any) -> int:
    return int(await pg.fetchval(dsn, sql, *args))


async def test_order_lifecycle_to_review(client: Any, world: dict[str, Any]) -> None:
    """An order through to its review on one path: what the create writes without users, an
    offer's default price and currency, and a rating off the half steps refused. Every move's
    refusals, the listings and the reviews' tags: test_orders_moves.py."""
    customer, p1 = world["customer"], world["p1"]
    nameless = nameless_orders()
    order = await create_order(client, customer, world["service"])
    assert nameless_orders() == nameless + 1  # counted
    assert (order["status"], order["customer_id"], order["customer_name"]) == (
        "OPEN",
        str(customer.id),
        None,  # users unreachable in this test: created without the snapshot
    )
    assert order["time_start"] == "2031-05-01T09:00:00Z"
    first = await make_offer(client, order["id"], p1)
    assert (first["status"], first["price"], first["currency"]) == ("PENDING", "95.50", "EUR")

    status, job = await post(
        client, f"/v1/orders/{order['id']}/offers/{first['id']}/accept", customer
    )
    assert status == 200, job
    job = job["data"]
    assert (job["status"], job["provider_id"], job["price"], job["offer_id"]) == (
        "PENDING",
        str(p1.id),
        "95.50",
        first["id"],
    )
    for move in ("start", "complete"):
        assert (await post(client, f"/v1/jobs/{job['id']}/{move}", p1))[0] == 200
    bad = await client.post(
        f"/v1/jobs/{job['id']}/review", json={"rating": 4.2}, headers=customer.headers
    )
    assert bad.status == 400
    review = await client.post(
        f"/v1/jobs/{job['id']}/review",
        json={"rating": 4.5, "comment": "Quick and tidy"},
        headers=customer.headers,
    )
    assert review.status == 201, await review.text()
    assert (await review.json())["data"]["rating"] == "4.5"
    body = await (await client.get(f"/v1/providers/{p1.id}/reviews")).json()
    assert [r["comment"] for r in body["data"]] == ["Quick and tidy"]
    meta = {"total": 1, "limit": 100, "page": 1, "next_cursor": None, "avg_rating": "4.50"}
    assert body["meta"] == meta


async def test_visibility_is_404_for_outsiders(client: Any, world: dict[str, Any]) -> None:
    customer, p1, outsider = world["customer"], world["p1"], world["outsider"]
    order = await create_order(client, customer, world["service"])
    path = f"/v1/orders/{order['id']}"
    other_customer = caller(Role.CUSTOMER)
    for who in (other_customer, outsider):
        assert (await client.get(path, headers=who.headers)).status == 404
        listed = await (await client.get("/v1/orders", headers=who.headers)).json()
        assert order["id"] not in [o["id"] for o in listed["data"]]
    # a MODERATOR has no role on orders: 403 whatever the order (nothing revealed)
    moderator = caller(Role.MODERATOR).headers
    assert (await client.get(path, headers=moderator)).status == 403
    assert (await client.get("/v1/orders", headers=moderator)).status == 403
    # a provider offering the service sees the OPEN order, ADMIN sees it
    assert (await client.get(path, headers=p1.headers)).status == 200
    assert (await client.get(path, headers=caller(Role.ADMIN).headers)).status == 200
    # a customer cannot make offers; PATCH: a role other than CUSTOMER 403 (the declaration).
    # What each stranger gets on each operation of the order: test_access_matrix.py's owners
    resp = await client.post(f"{path}/offers", json=offer_body(), headers=customer.headers)
    assert resp.status == 403
    patch = {"description": "Mine now"}
    for who in (p1, outsider):
        resp = await client.patch(path, json=patch, headers={**who.headers, "If-Match": '"1"'})
        assert resp.status == 403
    assert (await client.get(path)).status == 401


async def test_patch_needs_if_match_and_open(client: Any, world: dict[str, Any]) -> None:
    customer = world["customer"]
    order = await create_order(client, customer, world["service"])
    path = f"/v1/orders/{order['id']}"
    body = {"address": "2 Other Street"}
    assert (await client.patch(path, json=body, headers=customer.headers)).status == 428
    ok = await client.patch(path, json=body, headers={**customer.headers, "If-Match": '"1"'})
    assert ok.status == 200
    assert ok.headers["ETag"] == '"2"'
    assert (await ok.json())["data"]["address"] == "2 Other Street"
    stale = await client.patch(path, json=body, headers={**customer.headers, "If-Match": '"1"'})
    assert stale.status == 412
    backwards = {"time_end": "2031-05-01T08:00:00Z"}
    bad = await client.patch(path, json=backwards, headers={**customer.headers, "If-Match": '"2"'})
    assert bad.status == 400
    refused = await client.patch(
        path, json={"status": "COMPLETED"}, headers={**customer.headers, "If-Match": '"2"'}
    )
    assert refused.status == 403
    status, cancelled = await post(client, f"{path}/cancel", customer)
    assert (status, cancelled["data"]["status"]) == (200, "CANCELLED")
    late = await client.patch(path, json=body, headers={**customer.headers, "If-Match": '"3"'})
    assert late.status == 409
    assert (await post(client, f"{path}/cancel", customer))[0] == 409


async def test_cancel_rejects_pending_offers_and_closes_the_order(
    client: Any, world: dict[str, Any]
) -> None:
    customer, p1 = world["customer"], world["p1"]
    order = await create_order(client, customer, world["service"])
    offer = await make_offer(client, order["id"], p1)
    assert (await post(client, f"/v1/orders/{order['id']}/cancel", customer))[0] == 200
    offers = await (await client.get(f"/v1/orders/{order['id']}/offers", headers=p1.headers)).json()
    assert [(o["id"], o["status"]) for o in offers["data"]] == [(offer["id"], "REJECTED")]
    late = await client.post(
        f"/v1/orders/{order['id']}/offers", json=offer_body(), headers=p1.headers
    )
    assert late.status == 409


async def test_offer_validation(client: Any, world: dict[str, Any]) -> None:
    order = await create_order(client, world["customer"], world["service"])
    path = f"/v1/orders/{order['id']}/offers"
    p1 = world["p1"]
    for body in (offer_body(currency="XXX"), offer_body(price="0"), offer_body(extra=1)):
        resp = await client.post(path, json=body, headers=p1.headers)
        assert resp.status == 400, body
    unverified = caller(Role.PROVIDER, verified=False)
    assert (await client.post(path, json=offer_body(), headers=unverified.headers)).status == 403


async def test_create_order_checks(client: Any, world: dict[str, Any]) -> None:
    customer = world["customer"]
    resp = await client.post(
        "/v1/orders", json=order_body(str(uuid.uuid4())), headers=customer.headers
    )
    assert resp.status == 404
    assert "service_id" in (await resp.json())["detail"]
    backwards = order_body(world["service"], time_end="2031-05-01T08:00:00Z")
    assert (await client.post("/v1/orders", json=backwards, headers=customer.headers)).status == 400
    naive = order_body(world["service"], time_start="2031-05-01T09:00:00")
    assert (await client.post("/v1/orders", json=naive, headers=customer.headers)).status == 400
    body = order_body(world["service"])
    assert (await client.post("/v1/orders", json=body, headers=world["p1"].headers)).status == 403
    unverified = caller(Role.CUSTOMER, verified=False)
    assert (await client.post("/v1/orders", json=body, headers=unverified.headers)).status == 403
    assert (await client.post("/v1/orders", json=body)).status == 401


async def test_idempotent_replays_do_not_ask_catalog(
    client: Any, world: dict[str, Any], catalog_proxy: TcpProxy, orders_dsn: str
) -> None:
    """The stored answers of an order and an offer create come back with catalog gone:
    a replay is read before catalog is asked (a call would be a 503 here)."""
    customer, p1 = world["customer"], world["p1"]
    order_headers = {**customer.headers, "Idempotency-Key": uuid.uuid4().hex}
    body = order_body(world["service"], description="Replayed without catalog")
    first = await client.post("/v1/orders", json=body, headers=order_headers)
    assert first.status == 201, await first.text()
    order = (await first.json())["data"]
    offer_headers = {**p1.headers, "Idempotency-Key": uuid.uuid4().hex}
    offers_url = f"/v1/orders/{order['id']}/offers"
    made = await client.post(offers_url, json=offer_body(), headers=offer_headers)
    assert made.status == 201, await made.text()

    await catalog_proxy.stop()
    again = await client.post("/v1/orders", json=body, headers=order_headers)
    assert again.status == 201, await again.text()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.read() == await first.read()
    assert (again.headers["ETag"], again.headers["Location"]) == (
        first.headers["ETag"], first.headers["Location"])  # fmt: skip
    offer_again = await client.post(offers_url, json=offer_body(), headers=offer_headers)
    assert offer_again.status == 201, await offer_again.text()
    assert offer_again.headers["Idempotent-Replayed"] == "true"
    assert await offer_again.read() == await made.read()
    assert offer_again.headers["Location"] == made.headers["Location"]
    # another body under a used key: 409, still without catalog
    other = await client.post(
        "/v1/orders", json={**body, "description": "another"}, headers=order_headers
    )
    assert other.status == 409, await other.text()
    # a new key does need catalog: it is really gone
    fresh = {**customer.headers, "Idempotency-Key": uuid.uuid4().hex}
    assert (await client.post("/v1/orders", json=body, headers=fresh)).status == 503
    made_orders = await count(
        orders_dsn, "SELECT count(*) FROM orders WHERE customer_id = $1", customer.id
    )
    assert made_orders == 1


async def test_list_filters_search_and_currencies(client: Any, world: dict[str, Any]) -> None:
    customer = world["customer"]
    word = uuid.uuid4().hex[:10]
    a = await create_order(client, customer, world["service"], description=f"Leak {word}")
    b = await create_order(client, customer, world["service"])
    listed = await (await client.get("/v1/orders", headers=customer.headers)).json()
    assert [o["id"] for o in listed["data"]] == [b["id"], a["id"]]  # created_at desc
    assert listed["meta"]["total"] == 2
    asc = await (await client.get("/v1/orders?sort=asc", headers=customer.headers)).json()
    assert [o["id"] for o in asc["data"]] == [a["id"], b["id"]]
    found = await (await client.get(f"/v1/orders?search={word}", headers=customer.headers)).json()
    assert [o["id"] for o in found["data"]] == [a["id"]]
    await post(client, f"/v1/orders/{b['id']}/cancel", customer)
    cancelled = await (
        await client.get("/v1/orders?status=CANCELLED", headers=customer.headers)
    ).json()
    assert [o["id"] for o in cancelled["data"]] == [b["id"]]
    # a provider sees the OPEN one only (the service they offer)
    seen = await (await client.get("/v1/orders", headers=world["p1"].headers)).json()
    assert a["id"] in [o["id"] for o in seen["data"]]
    assert b["id"] not in [o["id"] for o in seen["data"]]
    for bad in ("orderby=price", "status=DONE", "limit=0", "service_id=x"):
        assert (await client.get(f"/v1/orders?{bad}", headers=customer.headers)).status == 400
    currencies = await (await client.get("/v1/currencies")).json()
    codes = [c["code"] for c in currencies["data"]]
    assert "EUR" in codes
    assert codes == sorted(codes)
    assert {"code": "JPY", "name": "Yen", "minor_units": 0} in currencies["data"]


async def test_concurrent_accepts_exactly_one_wins(
    client: Any, catalog: Any, orders_dsn: str
) -> None:
    customer = caller(Role.CUSTOMER)
    providers = [caller(Role.PROVIDER) for _ in range(20)]
    service_id = await catalog_service(catalog, *(p.id for p in providers))
    order = await create_order(client, customer, service_id)
    offers = [await make_offer(client, order["id"], p) for p in providers]
    base = f"/v1/orders/{order['id']}/offers"
    results = await asyncio.gather(
        *(post(client, f"{base}/{o['id']}/accept", customer) for o in offers)
    )
    assert Counter(status for status, _ in results) == {200: 1, 409: 19}
    assert await count(orders_dsn, "SELECT count(*) FROM jobs WHERE order_id = $1",
                       uuid.UUID(order["id"])) == 1  # fmt: skip
    accepted = await count(
        orders_dsn,
        "SELECT count(*) FROM offers WHERE order_id = $1 AND status = 'ACCEPTED'",
        uuid.UUID(order["id"]),
    )
    assert accepted == 1


async def test_job_completed_twice_at_once(
    client: Any, world: dict[str, Any], orders_dsn: str
) -> None:
    customer, p1 = world["customer"], world["p1"]
    order = await create_order(client, customer, world["service"])
    offer = await make_offer(client, order["id"], p1)
    _, job = await post(client, f"/v1/orders/{order['id']}/offers/{offer['id']}/accept", customer)
    job_id = job["data"]["id"]
    await post(client, f"/v1/jobs/{job_id}/start", p1)
    completed = {"service": "orders"}
    before = REGISTRY.get_sample_value("orders_jobs_completed_total", completed) or 0
    results = await asyncio.gather(
        post(client, f"/v1/jobs/{job_id}/complete", p1),
        post(client, f"/v1/jobs/{job_id}/complete", p1),
    )
    assert sorted(status for status, _ in results) == [200, 409]
    # the fact counted once, under the service's own label
    assert REGISTRY.get_sample_value("orders_jobs_completed_total", completed) == before + 1
    awards = await count(
        orders_dsn, "SELECT count(*) FROM outbox WHERE aggregate_id = $1", uuid.UUID(job_id)
    )
    assert awards == 1


async def test_catalog_down_opens_the_breaker_then_recovers(
    client: Any, world: dict[str, Any], catalog_proxy: TcpProxy
) -> None:
    customer = world["customer"]
    body = order_body(world["service"])
    port = catalog_proxy.port
    await catalog_proxy.stop()
    for _ in range(2):  # the threshold: two failed calls
        resp = await client.post("/v1/orders", json=body, headers=customer.headers)
        assert resp.status == 503
    # catalog back, but its answers held at the proxy: a call that went out would wait the
    # whole CATALOG_TIMEOUT, so answering sooner shows the open breaker made none
    await catalog_proxy.start(port)
    catalog_proxy.hold()
    start = time.perf_counter()
    resp = await client.post("/v1/orders", json=body, headers=customer.headers)
    elapsed = time.perf_counter() - start
    assert resp.status == 503
    assert (await resp.json())["code"] == "CIRCUIT_OPEN"
    assert resp.headers["Retry-After"]
    assert elapsed < CATALOG_TIMEOUT, elapsed
    assert await breaker_gauge(client) == 1.0  # open
    catalog_proxy.release()
    deadline = time.monotonic() + BREAKER_RESET + 5 * CATALOG_TIMEOUT
    while True:  # the half-open probe after reset_timeout closes it again
        resp = await client.post("/v1/orders", json=body, headers=customer.headers)
        if resp.status == 201:
            break
        assert resp.status == 503
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert await breaker_gauge(client) == 0.0  # closed again by the probe


async def test_the_callers_token_and_request_id_reach_catalog_and_users(
    aiohttp_server: Any, aiohttp_client: Any, orders_dsn: str, catalog_dsn: str
) -> None:
    """No service accounts: catalog and users are asked with the customer's own token and
    the request's id, and the name users answers is snapshotted on the order."""
    seen: list[tuple[str, str | None, str | None]] = []

    def note(request: web.Request) -> None:
        headers = request.headers
        seen.append((request.path, headers.get("Authorization"), headers.get("X-Request-ID")))

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        note(request)
        return await handler(request)  # type: ignore[no-any-return]

    catalog_application = catalog_app(catalog_settings(catalog_dsn))
    catalog_application.middlewares.insert(0, record)
    catalog_server = await aiohttp_server(catalog_application)

    async def user(request: web.Request) -> web.Response:
        note(request)
        return web.json_response({"data": {"first_name": "Ada", "last_name": "Lovelace"}})

    users_application = web.Application()
    users_application.router.add_get("/v1/users/{id}", user)
    users_server = await aiohttp_server(users_application)
    settings = orders_settings(
        orders_dsn,
        catalog_url=f"http://127.0.0.1:{catalog_server.port}",
        users_url=f"http://127.0.0.1:{users_server.port}",
    )
    client = await aiohttp_client(create_app(settings))
    customer, provider = caller(Role.CUSTOMER), caller(Role.PROVIDER)
    service_id = await catalog_service(await aiohttp_client(catalog_server), provider.id)
    seen.clear()
    headers = {**customer.headers, "X-Request-ID": "forward-me-1"}
    resp = await client.post("/v1/orders", json=order_body(service_id), headers=headers)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["data"]["customer_name"] == "Ada Lovelace"
    token = customer.headers["Authorization"]
    assert (f"/v1/services/{service_id}", token, "forward-me-1") in seen
    assert (f"/v1/users/{customer.id}", token, "forward-me-1") in seen
    assert {path for path, _, _ in seen} == {
        f"/v1/services/{service_id}",
        f"/v1/users/{customer.id}",
    }
