"""Jobs and offers (services/orders/jobs.py, offers.py) against real PostgreSQL and the
real catalog app: every move, every refusal's status and detail (404 for who cannot see,
403 for the wrong side, 409 for the wrong state), what each move writes (the order's
state, the other offers, the outbox row) and the listings. The refusals' 403s come from a
caller whose role changed since (a new token, the same user id): the only way to see the
job or the order and still be on the wrong side of it.

Fast and self-contained (one catalog and one orders app, no outage): the killing tests of
the mutation run for both modules (docs/mutation.md)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from lib import tracing
from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from services.catalog.app import create_app as catalog_app
from services.orders.app import create_app
from services.orders.jobs import reviews_tag
from services.orders.relay import RELAY
from tests import pg
from tests.integration.auth_support import KEYS, TEST_TOKEN_TTL, Bearer, bearer
from tests.integration.catalog_support import catalog_settings
from tests.integration.orders_support import (
    Caller,
    caller,
    catalog_service,
    offer_body,
    order_body,
    orders_settings,
)

# the resource's own query model refuses another sort key (not the generic check)
ORDERBY_ERROR = {"field": "orderby", "message": "Input should be 'created_at'"}
POINTS = 7  # POINTS_PER_JOB of these tests: not the default, so the award shows it
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
async def catalog(aiohttp_client: Any, catalog_dsn: str) -> Any:
    return await aiohttp_client(catalog_app(catalog_settings(catalog_dsn)))


class Wakes:
    """Stands in for the outbox relay (no points server here): counts its wake-ups."""

    def __init__(self) -> None:
        self.count = 0

    def wake(self) -> None:
        self.count += 1


@pytest.fixture
def wakes() -> Wakes:
    return Wakes()


@pytest.fixture
async def client(aiohttp_client: Any, orders_dsn: str, catalog: Any, wakes: Wakes) -> Any:
    settings = orders_settings(
        orders_dsn,
        catalog_url=str(catalog.make_url("")).rstrip("/"),
        points_per_job=POINTS,
    )
    app = create_app(settings)
    app[RELAY] = wakes  # type: ignore[assignment]
    return await aiohttp_client(app)


@pytest.fixture
async def world(catalog: Any) -> dict[str, Any]:
    customer, p1, p2 = caller(Role.CUSTOMER), caller(Role.PROVIDER), caller(Role.PROVIDER)
    service_id = await catalog_service(catalog, p1.id, p2.id)
    return {"customer": customer, "p1": p1, "p2": p2, "service": service_id}


def as_role(who: Caller, role: Role) -> Caller:
    """The same user with another role (an ADMIN changed it; a new token)."""
    value, _ = TokenSigner(KEYS[0], TEST_TOKEN_TTL).issue(who.id, role, True)
    return Caller(who.id, {"Authorization": f"Bearer {value}"})


ADMIN = Caller(uuid.uuid4(), Bearer(Role.ADMIN))


async def call(
    client: Any, method: str, path: str, who: Caller, **kw: Any
) -> tuple[int, dict[str, Any]]:
    resp = await client.request(method, path, headers=who.headers, **kw)
    body: dict[str, Any] = await resp.json()
    return resp.status, body


async def refused(client: Any, path: str, who: Caller, status: int, detail: str) -> None:
    got = await call(client, "POST", path, who)
    assert (got[0], got[1].get("detail")) == (status, detail), got


async def new_order(client: Any, world: dict[str, Any]) -> str:
    status, body = await call(
        client, "POST", "/v1/orders", world["customer"], json=order_body(world["service"])
    )
    assert status == 201, body
    order_id: str = body["data"]["id"]
    return order_id


async def new_offer(client: Any, order_id: str, who: Caller, **kw: Any) -> dict[str, Any]:
    status, body = await call(
        client, "POST", f"/v1/orders/{order_id}/offers", who, json=offer_body(**kw)
    )
    assert status == 201, body
    made: dict[str, Any] = body["data"]
    return made


async def new_job(client: Any, world: dict[str, Any], provider: str = "p1") -> dict[str, Any]:
    order_id = await new_order(client, world)
    offer = await new_offer(client, order_id, world[provider])
    status, body = await call(
        client, "POST", f"/v1/orders/{order_id}/offers/{offer['id']}/accept", world["customer"]
    )
    assert status == 200, body
    job: dict[str, Any] = body["data"]
    return job


async def order_status(client: Any, order_id: str, who: Caller) -> str:
    status, body = await call(client, "GET", f"/v1/orders/{order_id}", who)
    assert status == 200, body
    value: str = body["data"]["status"]
    return value


# --- jobs ---------------------------------------------------------------------------------


async def test_a_job_is_seen_by_its_two_sides_and_ADMIN(client: Any, world: dict[str, Any]) -> None:
    job = await new_job(client, world)
    path = f"/v1/jobs/{job['id']}"
    for who in (world["customer"], world["p1"], ADMIN):
        status, body = await call(client, "GET", path, who)
        assert (status, body["data"]) == (200, job)
    for who in (world["p2"], caller(Role.CUSTOMER)):
        assert (await call(client, "GET", path, who))[1]["detail"] == "no such job"
    status, body = await call(client, "GET", f"/v1/jobs/{uuid.uuid4()}", ADMIN)
    assert (status, body["detail"]) == (404, "no such job")


async def test_start_and_complete_by_the_provider_only(
    client: Any, world: dict[str, Any], orders_dsn: str, wakes: Wakes, monkeypatch: Any
) -> None:
    customer, p1, p2 = world["customer"], world["p1"], world["p2"]
    job = await new_job(client, world)
    base = f"/v1/jobs/{job['id']}"
    assert job["status"] == "PENDING"
    # another provider cannot see it; the customer, a provider now, is the wrong side
    await refused(client, f"{base}/start", p2, 404, "no such job")
    await refused(client, f"{base}/complete", p2, 404, "no such job")
    await refused(client, f"{uuid_path()}/start", p1, 404, "no such job")
    turned = as_role(customer, Role.PROVIDER)
    await refused(client, f"{base}/start", turned, 403, "only the job's provider may do this")
    await refused(client, f"{base}/complete", p1, 409, "the job is PENDING")  # not started

    status, body = await call(client, "POST", f"{base}/start", p1)
    assert status == 200, body
    started = body["data"]
    assert (started["id"], started["status"]) == (job["id"], "IN_PROGRESS")
    assert started["started_at"] is not None
    assert started["completed_at"] is None
    await refused(client, f"{base}/start", p1, 409, "the job is IN_PROGRESS")
    await refused(client, f"{base}/complete", turned, 403, "only the job's provider may do this")
    assert (
        await pg.fetch(orders_dsn, "SELECT 1 FROM outbox WHERE aggregate_id = $1", job["id"]) == []
    )
    assert wakes.count == 0

    monkeypatch.setattr(tracing, "current_traceparent", lambda: TRACEPARENT)
    completed = {"service": "orders"}
    before = REGISTRY.get_sample_value("orders_jobs_completed_total", completed) or 0
    status, body = await call(client, "POST", f"{base}/complete", p1)
    assert status == 200, body
    # the fact counted once, under the service's own label
    assert REGISTRY.get_sample_value("orders_jobs_completed_total", completed) == before + 1
    done = body["data"]
    assert (done["id"], done["status"]) == (job["id"], "COMPLETED")
    assert done["completed_at"] is not None
    assert await order_status(client, job["order_id"], customer) == "COMPLETED"
    assert wakes.count == 1  # the relay is told at once
    (award,) = await pg.fetch(
        orders_dsn,
        "SELECT topic, payload::text AS payload, idempotency_key, traceparent FROM outbox"
        " WHERE aggregate_id = $1",
        job["id"],
    )
    assert award["topic"] == "points.award"
    assert award["idempotency_key"] == f"job:{job['id']}"
    assert award["traceparent"] == TRACEPARENT
    assert orjson.loads(award["payload"]) == {
        "user_id": str(p1.id),
        "delta": POINTS,
        "reason": f"job {job['id']} completed",
    }
    await refused(client, f"{base}/complete", p1, 409, "the job is COMPLETED")
    await refused(client, f"{base}/start", p1, 409, "the job is COMPLETED")
    await refused(client, f"{base}/cancel", customer, 409, "the job is COMPLETED")
    rows = await pg.fetch(orders_dsn, "SELECT 1 FROM outbox WHERE aggregate_id = $1", job["id"])
    assert len(rows) == 1  # once
    assert wakes.count == 1


def uuid_path() -> str:
    return f"/v1/jobs/{uuid.uuid4()}"


async def test_either_side_cancels_and_the_order_is_open_again(
    client: Any, world: dict[str, Any]
) -> None:
    customer, p1, p2 = world["customer"], world["p1"], world["p2"]
    for who in (customer, p1):
        job = await new_job(client, world)
        base = f"/v1/jobs/{job['id']}"
        await refused(client, f"{base}/cancel", p2, 404, "no such job")
        await refused(client, f"{base}/cancel", caller(Role.CUSTOMER), 404, "no such job")
        if who is p1:
            assert (await call(client, "POST", f"{base}/start", p1))[0] == 200
        status, body = await call(client, "POST", f"{base}/cancel", who)
        assert status == 200, body
        assert (body["data"]["id"], body["data"]["status"]) == (job["id"], "CANCELLED")
        assert await order_status(client, job["order_id"], customer) == "OPEN"
        await refused(client, f"{base}/cancel", customer, 409, "the job is CANCELLED")
        await refused(client, f"{base}/cancel", p1, 409, "the job is CANCELLED")
        await refused(client, f"{base}/start", p1, 409, "the job is CANCELLED")
        assert await order_status(client, job["order_id"], p1) == "OPEN"
        again = await new_offer(client, job["order_id"], p1)  # the same provider, welcome again
        accept = f"/v1/orders/{job['order_id']}/offers/{again['id']}/accept"
        assert (await call(client, "POST", accept, customer))[0] == 200
    await refused(client, f"{uuid_path()}/cancel", customer, 404, "no such job")


async def test_reviews_of_completed_jobs(client: Any, world: dict[str, Any]) -> None:
    customer, p1 = world["customer"], world["p1"]
    provider_reviews = f"/v1/providers/{p1.id}/reviews"
    status, empty = await call(client, "GET", provider_reviews, customer)
    meta = {**page(0), "next_cursor": None, "avg_rating": None}
    assert (status, empty) == (200, {"data": [], "meta": meta})
    jobs = [await new_job(client, world), await new_job(client, world)]
    review = {"rating": 4.5, "comment": "Quick and tidy"}
    path = f"/v1/jobs/{jobs[0]['id']}/review"
    status, body = await call(client, "POST", path, customer, json=review)
    assert (status, body["detail"]) == (409, "the job is PENDING")
    for job in jobs:
        for move in ("start", "complete"):
            assert (await call(client, "POST", f"/v1/jobs/{job['id']}/{move}", p1))[0] == 200
    # the wrong side (the provider, a customer now), a stranger, an unknown job
    turned = as_role(p1, Role.CUSTOMER)
    status, body = await call(client, "POST", path, turned, json=review)
    assert (status, body["detail"]) == (403, "only the job's customer may do this")
    status, body = await call(client, "POST", path, caller(Role.CUSTOMER), json=review)
    assert (status, body["detail"]) == (404, "no such job")
    status, body = await call(client, "POST", f"{uuid_path()}/review", customer, json=review)
    assert (status, body["detail"]) == (404, "no such job")
    for field in ("id", "job_id"):
        status, body = await call(client, "POST", path, customer, json={**review, field: "x"})
        assert (status, body["detail"]) == (403, f"you may not set: {field}")

    status, body = await call(client, "POST", path, customer, json=review)
    assert status == 201, body
    first = body["data"]
    assert (first["job_id"], first["rating"], first["comment"]) == (
        jobs[0]["id"],
        "4.5",
        "Quick and tidy",
    )
    assert (first["customer_id"], first["provider_id"]) == (str(customer.id), str(p1.id))
    status, body = await call(client, "POST", path, customer, json={"rating": 3})
    assert (status, body["detail"]) == (409, "this job is already reviewed")
    second_path = f"/v1/jobs/{jobs[1]['id']}/review"
    status, body = await call(client, "POST", second_path, customer, json={"rating": 3})
    assert status == 201, body
    second = body["data"]

    resp = await client.get(provider_reviews)  # public
    listed = await resp.json()
    assert [r["id"] for r in listed["data"]] == [second["id"], first["id"]]  # newest first
    assert listed["meta"] == {**page(2), "next_cursor": None, "avg_rating": "3.75"}
    tag = resp.headers["ETag"]
    unchanged = await client.get(provider_reviews, headers={"If-None-Match": tag})
    assert (unchanged.status, unchanged.headers["ETag"]) == (304, tag)
    oldest = await (await client.get(f"{provider_reviews}?sort=asc&limit=1")).json()
    assert [r["id"] for r in oldest["data"]] == [first["id"]]
    cursor = oldest["meta"].pop("next_cursor")
    assert cursor is not None
    assert oldest["meta"] == {"total": 2, "limit": 1, "page": 1, "avg_rating": "3.75"}
    later = await (await client.get(f"{provider_reviews}?sort=asc&limit=1&page=2")).json()
    after = await (await client.get(f"{provider_reviews}?sort=asc&limit=1&cursor={cursor}")).json()
    assert [r["id"] for r in after["data"]] == [second["id"]]
    assert after["meta"]["avg_rating"] == "3.75"
    bad = await client.get(f"{provider_reviews}?orderby=rating")
    assert (bad.status, (await bad.json())["errors"]) == (400, [ORDERBY_ERROR])
    assert [r["id"] for r in later["data"]] == [second["id"]]
    # a third review changes the tag of the provider's list
    third = await new_job(client, world)
    for move in ("start", "complete"):
        assert (await call(client, "POST", f"/v1/jobs/{third['id']}/{move}", p1))[0] == 200
    done = await call(client, "POST", f"/v1/jobs/{third['id']}/review", customer, json=review)
    assert done[0] == 201
    changed = await client.get(provider_reviews, headers={"If-None-Match": tag})
    assert changed.status == 200
    assert changed.headers["ETag"] != tag


async def test_a_conditional_read_that_goes_on_reads_the_reviews_stamp_once(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The If-None-Match check reads the stamp; a request it lets through answers with
    that tag, not a second read (lib/http/conditional: request[TAG])."""
    reads: list[list[str]] = []
    real = reviews_tag.read

    async def counted(conn: Any, *, names: list[str]) -> int | None:
        reads.append(names)
        return await real(conn, names=names)

    monkeypatch.setattr(reviews_tag, "read", counted)  # the list's TablesStamp (ADR 0038)
    path = f"/v1/providers/{uuid.uuid4()}/reviews"
    fresh = await client.get(path)
    assert (fresh.status, reads) == (200, [["reviews"]])
    reads.clear()
    stale = await client.get(path, headers={"If-None-Match": '"0.0"'})
    assert (stale.status, reads) == (200, [["reviews"]])
    assert stale.headers["ETag"] == fresh.headers["ETag"]
    reads.clear()
    same = await client.get(path, headers={"If-None-Match": fresh.headers["ETag"]})
    assert (same.status, reads) == (304, [["reviews"]])


def offset_page(total: int, limit: int = 100) -> dict[str, Any]:
    """meta of page 1 of an offset-only list (an order's offers)."""
    return {"total": total, "limit": limit, "page": 1}


def page(total: int, limit: int = 100) -> dict[str, Any]:
    """meta of page 1 (next_cursor only checked for being there; test_orders_cursor.py
    walks it)."""
    return {"total": total, "limit": limit, "page": 1, "next_cursor": total > limit}


async def test_list_jobs(client: Any, world: dict[str, Any], orders_dsn: str) -> None:
    customer, p1, p2 = world["customer"], world["p1"], world["p2"]
    older = await new_job(client, world)
    newer = await new_job(client, world, "p2")
    assert (await call(client, "POST", f"/v1/jobs/{older['id']}/start", p1))[0] == 200

    async def ids(who: Caller, query: str = "") -> tuple[list[str], dict[str, Any]]:
        status, body = await call(client, "GET", f"/v1/jobs{query}", who)
        assert status == 200, body
        meta = body["meta"] | {"next_cursor": body["meta"]["next_cursor"] is not None}
        return [j["id"] for j in body["data"]], meta

    assert await ids(customer) == ([newer["id"], older["id"]], page(2))  # newest first
    assert await ids(customer, "?sort=asc") == ([older["id"], newer["id"]], page(2))
    assert await ids(customer, "?limit=1") == ([newer["id"]], page(2, 1))
    last = {**page(2, 1), "page": 2, "next_cursor": True}  # a full page: maybe more
    assert await ids(customer, "?limit=1&page=2") == ([older["id"]], last)
    # the cursor walks the same order; after a cursor meta has no total and no page
    _, first = await call(client, "GET", "/v1/jobs?limit=1", customer)
    _, second = await call(
        client, "GET", f"/v1/jobs?limit=1&cursor={first['meta']['next_cursor']}", customer
    )
    assert [j["id"] for j in second["data"]] == [older["id"]]
    assert set(second["meta"]) == {"limit", "next_cursor"}
    _, end = await call(
        client, "GET", f"/v1/jobs?limit=1&cursor={second['meta']['next_cursor']}", customer
    )
    assert end == {"data": [], "meta": {"limit": 1, "next_cursor": None}}
    bad, _ = await call(
        client, "GET", f"/v1/jobs?sort=asc&cursor={first['meta']['next_cursor']}", customer
    )
    assert bad == 400  # issued for sort=desc
    assert await ids(customer, "?status=IN_PROGRESS") == ([older["id"]], page(1))
    assert await ids(customer, "?status=COMPLETED") == ([], page(0))
    assert await ids(p1) == ([older["id"]], page(1))
    assert await ids(p2) == ([newer["id"]], page(1))
    assert await ids(caller(Role.PROVIDER)) == ([], page(0))
    every, meta = await ids(ADMIN, "?limit=100")
    assert every[:2] == [newer["id"], older["id"]]
    # every job of the database: the other tests' too (under mutmut, earlier sessions')
    (jobs,) = await pg.fetch(orders_dsn, "SELECT count(*) AS n FROM jobs")
    assert (meta["total"], len(every)) == (jobs["n"], min(jobs["n"], 100))
    pending, _ = await ids(ADMIN, "?status=PENDING")
    assert newer["id"] in pending
    assert older["id"] not in pending


# --- offers -------------------------------------------------------------------------------


async def test_make_an_offer(client: Any, catalog: Any, world: dict[str, Any]) -> None:
    customer, p1, p2 = world["customer"], world["p1"], world["p2"]
    order_id = await new_order(client, world)
    path = f"/v1/orders/{order_id}/offers"
    made = {"service": "orders"}
    before = REGISTRY.get_sample_value("orders_offers_made_total", made) or 0
    resp = await client.post(path, json=offer_body(price="80"), headers=p1.headers)
    assert resp.status == 201, await resp.text()
    # the fact counted once, under the service's own label
    assert REGISTRY.get_sample_value("orders_offers_made_total", made) == before + 1
    offer = (await resp.json())["data"]
    assert resp.headers["Location"] == f"{path}/{offer['id']}"
    assert (offer["order_id"], offer["provider_id"], offer["status"]) == (
        order_id,
        str(p1.id),
        "PENDING",
    )
    assert (offer["price"], offer["currency"], offer["message"]) == (
        "80.00",
        "EUR",
        "I can come at nine",
    )
    status, body = await call(client, "POST", path, p1, json=offer_body())
    assert (status, body["detail"]) == (409, "you already have a PENDING offer on this order")
    for field in ("id", "status"):
        status, body = await call(client, "POST", path, p2, json={**offer_body(), field: "x"})
        assert (status, body["detail"]) == (403, f"you may not set: {field}")
    status, body = await call(client, "POST", path, p2, json=offer_body(currency="ZZZ"))
    assert (status, body["detail"]) == (400, "unknown currency: ZZZ")
    assert body["errors"] == [{"field": "currency", "message": "not a known ISO 4217 code"}]
    status, body = await call(client, "POST", path, caller(Role.PROVIDER), json=offer_body())
    assert (status, body["detail"]) == (404, "no such order")
    # p1 no longer offers the service: still sees the order (its offer), may not offer again
    gone = await catalog.delete(
        f"/v1/providers/{p1.id}/services/{world['service']}", headers=bearer(Role.ADMIN)
    )
    assert gone.status == 204, await gone.text()
    withdrawn = await call(client, "POST", f"{path}/{offer['id']}/withdraw", p1)
    assert withdrawn[0] == 200
    status, body = await call(client, "POST", path, p1, json=offer_body())
    assert (status, body["detail"]) == (403, "you do not offer this order's service")
    # an order that is not OPEN: p2, who has an offer on it, still sees it
    made = await new_offer(client, order_id, p2)
    accepted = await call(client, "POST", f"{path}/{made['id']}/accept", customer)
    assert accepted[0] == 200
    assert (await call(client, "POST", f"{path}/{made['id']}/withdraw", p2))[0] == 409
    status, body = await call(client, "POST", path, p2, json=offer_body())
    assert (status, body["detail"]) == (409, "the order is not OPEN")


async def test_an_offer_asks_catalog_with_the_providers_token_and_request_id(
    aiohttp_client: Any, catalog_dsn: str, orders_dsn: str
) -> None:
    """No service accounts: the services the provider offers are asked of catalog with the
    provider's own token and the request's id (to see the order, then to offer on it)."""
    seen: list[tuple[str, str | None, str | None]] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        headers = request.headers
        seen.append((request.path, headers.get("Authorization"), headers.get("X-Request-ID")))
        return await handler(request)  # type: ignore[no-any-return]

    application = catalog_app(catalog_settings(catalog_dsn))
    application.middlewares.insert(0, record)
    catalog = await aiohttp_client(application)
    settings = orders_settings(orders_dsn, catalog_url=str(catalog.make_url("")).rstrip("/"))
    client = await aiohttp_client(create_app(settings))
    customer, p1 = caller(Role.CUSTOMER), caller(Role.PROVIDER)
    world = {"customer": customer, "service": await catalog_service(catalog, p1.id)}
    order_id = await new_order(client, world)
    seen.clear()
    headers = {**p1.headers, "X-Request-ID": "offer-forward-1"}
    resp = await client.post(f"/v1/orders/{order_id}/offers", json=offer_body(), headers=headers)
    assert resp.status == 201, await resp.text()
    asked = (f"/v1/providers/{p1.id}/services", p1.headers["Authorization"], "offer-forward-1")
    assert seen == [asked, asked]  # visible_order's, then the offer's own


async def test_each_action_is_replayed_by_its_key(
    client: Any, world: dict[str, Any], orders_dsn: str
) -> None:
    """make an offer, accept, start and complete (withdraw and cancel too) honour
    Idempotency-Key, so the gateway may send them again after a lost connection (ADR 0022):
    the repeat answers the first 201 or 200 and moves nothing twice; the key on another
    request is a 409."""
    customer, p1 = world["customer"], world["p1"]

    async def twice(path: str, who: Caller, key: str) -> dict[str, Any]:
        headers = {**who.headers, "Idempotency-Key": key}
        first = await client.post(path, headers=headers)
        assert first.status == 200, await first.text()
        again = await client.post(path, headers=headers)
        assert (again.status, again.headers["Idempotent-Replayed"]) == (200, "true")
        assert await again.json() == await first.json()
        answer: dict[str, Any] = await first.json()
        return answer["data"]

    order_id = await new_order(client, world)
    offers = f"/v1/orders/{order_id}/offers"
    made = {**p1.headers, "Idempotency-Key": f"offer-{uuid.uuid4()}"}
    first = await client.post(offers, json=offer_body(), headers=made)
    assert first.status == 201, await first.text()
    again = await client.post(offers, json=offer_body(), headers=made)
    assert again.status == 201, await again.text()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert await again.json() == await first.json()
    offer = (await first.json())["data"]
    accept = f"{offers}/{offer['id']}/accept"
    job = await twice(accept, customer, f"act-{uuid.uuid4()}")
    started = f"act-{uuid.uuid4()}"
    assert (await twice(f"/v1/jobs/{job['id']}/start", p1, started))["status"] == "IN_PROGRESS"
    completed = await twice(f"/v1/jobs/{job['id']}/complete", p1, f"act-{uuid.uuid4()}")
    assert completed["status"] == "COMPLETED"
    jobs = await pg.fetch(orders_dsn, "SELECT id FROM jobs WHERE order_id = $1", order_id)
    awards = await pg.fetch(orders_dsn, "SELECT id FROM outbox WHERE aggregate_id = $1", job["id"])
    assert (len(jobs), len(awards)) == (1, 1)
    reused = {**p1.headers, "Idempotency-Key": started}
    other = await client.post(f"/v1/jobs/{job['id']}/cancel", headers=reused)
    assert other.status == 409, await other.text()
    assert (await other.json())["detail"] == "this Idempotency-Key was used for a different request"


async def test_list_offers(client: Any, world: dict[str, Any]) -> None:
    customer, p1, p2 = world["customer"], world["p1"], world["p2"]
    order_id = await new_order(client, world)
    path = f"/v1/orders/{order_id}/offers"
    status, body = await call(client, "GET", path, p2)  # sees the OPEN order, no offer yet
    assert (status, body) == (200, {"data": [], "meta": offset_page(0)})
    first = await new_offer(client, order_id, p1)
    second = await new_offer(client, order_id, p2)

    async def ids(who: Caller, query: str = "") -> tuple[list[str], dict[str, Any]]:
        status, body = await call(client, "GET", f"{path}{query}", who)
        assert status == 200, body
        return [o["id"] for o in body["data"]], body["meta"]

    both = [first["id"], second["id"]]
    assert await ids(customer) == (both, offset_page(2))  # oldest first by default
    assert await ids(ADMIN) == (both, offset_page(2))
    assert await ids(customer, "?sort=asc") == (both, offset_page(2))
    assert await ids(customer, "?sort=desc") == (both[::-1], offset_page(2))
    # sort=desc pages the newest first: page 1 of one is the latest offer, not the oldest
    # (the SQL pages in the asked direction; a reversed ascending page was wrong)
    assert await ids(customer, "?sort=desc&limit=1&page=1") == ([second["id"]], offset_page(2, 1))
    assert await ids(customer, "?sort=desc&limit=1&page=2") == (
        [first["id"]],
        {**offset_page(2, 1), "page": 2},
    )
    assert await ids(customer, "?limit=1") == ([first["id"]], offset_page(2, 1))
    assert await ids(customer, "?limit=1&page=2") == (
        [second["id"]],
        {**offset_page(2, 1), "page": 2},
    )
    status, body = await call(client, "GET", f"{path}?orderby=price", customer)
    assert (status, body["errors"]) == (400, [ORDERBY_ERROR])
    assert await ids(p1) == ([first["id"]], offset_page(1))  # a provider: only theirs
    assert await ids(p2, "?sort=desc") == ([second["id"]], offset_page(1))
    status, body = await call(client, "GET", path, caller(Role.CUSTOMER))
    assert (status, body["detail"]) == (404, "no such order")


async def test_withdraw_an_offer(client: Any, world: dict[str, Any]) -> None:
    customer, p1, p2 = world["customer"], world["p1"], world["p2"]
    order_id = await new_order(client, world)
    offer = await new_offer(client, order_id, p1)
    base = f"/v1/orders/{order_id}/offers"
    item = f"{base}/{offer['id']}/withdraw"
    await refused(client, item, p2, 404, "no such offer")  # sees the order, not the offer
    await refused(client, f"{base}/{uuid.uuid4()}/withdraw", p1, 404, "no such offer")
    await refused(
        client, f"/v1/orders/{uuid.uuid4()}/offers/{offer['id']}/withdraw", p1, 404,
        "no such order",
    )  # fmt: skip
    stranger = caller(Role.PROVIDER)  # offers nothing: cannot see the order
    await refused(client, item, stranger, 404, "no such order")
    await refused(client, item, customer, 403, "requires role PROVIDER")
    turned = as_role(customer, Role.PROVIDER)  # the order's customer, a provider now
    await refused(client, item, turned, 403, "only the offer's provider may withdraw it")
    status, body = await call(client, "POST", item, p1)
    assert status == 200, body
    assert (body["data"]["id"], body["data"]["status"]) == (offer["id"], "WITHDRAWN")
    await refused(client, item, p1, 409, "the offer is WITHDRAWN, not PENDING")
    await refused(client, item, turned, 403, "only the offer's provider may withdraw it")


async def test_accept_an_offer(client: Any, world: dict[str, Any]) -> None:
    customer, p1, p2 = world["customer"], world["p1"], world["p2"]
    order_id = await new_order(client, world)
    base = f"/v1/orders/{order_id}/offers"
    gone = await new_offer(client, order_id, p1)
    assert (await call(client, "POST", f"{base}/{gone['id']}/withdraw", p1))[0] == 200
    # refused: the order is left OPEN and no offer moves
    await refused(
        client, f"{base}/{gone['id']}/accept", customer, 409, "the offer is WITHDRAWN, not PENDING"
    )
    await refused(client, f"{base}/{uuid.uuid4()}/accept", customer, 404, "no such offer")
    other = caller(Role.CUSTOMER)
    await refused(client, f"{base}/{gone['id']}/accept", other, 404, "no such order")
    await refused(
        client, f"{base}/{gone['id']}/accept", as_role(p2, Role.CUSTOMER), 404, "no such order"
    )
    assert await order_status(client, order_id, customer) == "OPEN"

    first = await new_offer(client, order_id, p1, price="90")
    second = await new_offer(client, order_id, p2)
    # the offer of another order is not this order's
    elsewhere = await new_order(client, world)
    status, body = await call(client, "POST", f"/v1/orders/{elsewhere}/offers/{first['id']}/accept",
                              customer)  # fmt: skip
    assert (status, body["detail"]) == (404, "no such offer")
    assert await order_status(client, elsewhere, customer) == "OPEN"

    status, body = await call(client, "POST", f"{base}/{first['id']}/accept", customer)
    assert status == 200, body
    job = body["data"]
    assert (job["order_id"], job["offer_id"], job["status"]) == (order_id, first["id"], "PENDING")
    assert (job["customer_id"], job["provider_id"]) == (str(customer.id), str(p1.id))
    assert (job["price"], job["currency"]) == ("90.00", "EUR")
    got = await call(client, "GET", f"/v1/jobs/{job['id']}", p1)
    assert got == (200, {"data": job})
    status, listed = await call(client, "GET", base, customer)
    states = {o["id"]: o["status"] for o in listed["data"]}
    assert states == {gone["id"]: "WITHDRAWN", first["id"]: "ACCEPTED", second["id"]: "REJECTED"}
    assert await order_status(client, order_id, customer) == "ASSIGNED"
    # the order is not OPEN any more
    await refused(
        client, f"{base}/{second['id']}/accept", customer, 409, "the order is ASSIGNED, not OPEN"
    )
