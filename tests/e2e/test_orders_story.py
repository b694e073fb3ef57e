"""The whole story, black box, through real NGINX and real processes (users, catalog,
orders with its outbox relay, points over gRPC): a customer and a provider register,
verify by mail and log in; an ADMIN (seeded) builds the catalog; the provider offers the
service; order -> offer -> accept -> start -> complete -> review; the provider's points
grow by POINTS_PER_JOB exactly once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import asyncpg
import pytest

from lib.auth.passwords import make_hasher
from tests.e2e.gateway_stack import wait_until
from tests.e2e.story_stack import Dsns, Session, StoryStack, call, login, running_story_stack
from tests.integration.smtp_support import SmtpSink, smtp_sink, token_in
from tools.databases import database_name
from tools.dbadmin import mysql_connect
from tools.service_process import PROCESS_MARGIN

PASSWORD = "correct horse battery"
POINTS_PER_JOB = 7  # not the default: the award is this setting, not a constant
T0 = "2031-05-01T09:00:00+00:00"


@pytest.fixture(scope="module")
async def sink() -> AsyncIterator[SmtpSink]:
    with smtp_sink() as s:
        yield s


@pytest.fixture(scope="module")
async def stack(
    migrated_db: Callable[[str], str],
    tmp_path_factory: pytest.TempPathFactory,
    sink: SmtpSink,
) -> AsyncIterator[StoryStack]:
    dsns = Dsns(*(migrated_db(db) for db in ("users", "catalog", "orders", "points")))
    smtp = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sink.port), "SMTP_TIMEOUT": "2"}
    tmp = tmp_path_factory.mktemp("orders_story")
    async with running_story_stack(
        tmp, dsns, users_env=smtp, points_per_job=POINTS_PER_JOB
    ) as running:
        yield running


async def seeded_admin(http: aiohttp.ClientSession, stack: StoryStack) -> Session:
    """An ADMIN row as `make seed` writes one (there is no way to register an ADMIN)."""
    email = f"admin-{uuid.uuid4().hex[:8]}@fixup.test"
    conn = await asyncpg.connect(stack.dsns.users)
    try:
        await conn.execute(
            "INSERT INTO users (id, email, password_hash, first_name, last_name, phone_number,"
            " role, verified) VALUES ($1, $2, $3, 'Fixup', 'Admin', '+1 555 0100', 'ADMIN', true)",
            uuid.uuid4(), email, make_hasher(1, 8, 1).hash(PASSWORD),
        )  # fmt: skip
    finally:
        await conn.close()
    return await login(http, stack.api("users"), email, PASSWORD)


async def registered(
    http: aiohttp.ClientSession, stack: StoryStack, sink: SmtpSink, role: str, **extra: Any
) -> Session:
    """register -> the mail -> verify -> login, all through NGINX."""
    users = stack.api("users")
    email = f"story-{uuid.uuid4().hex[:12]}@fixup.test"
    account = {
        "email": email,
        "password": PASSWORD,
        "first_name": "Grace",
        "last_name": role.title(),
        "phone_number": "+1 555 0100",
        "role": role,
        **extra,
    }
    resp, body = await call(http, "POST", f"{users}/v1/auth/register", json=account)
    assert resp.status == 201, body
    user_id = body["data"]["id"]
    while (mail := await sink.next_mail())["To"] != email:
        pass
    resp, body = await call(http, "POST", f"{users}/v1/auth/verify", json={"token": token_in(mail)})
    assert resp.status == 204, body
    session = await login(http, users, email, PASSWORD)
    assert session.id == user_id
    return session


async def created(
    http: aiohttp.ClientSession, url: str, who: Session, body: dict[str, Any], **headers: str
) -> dict[str, Any]:
    resp, answer = await call(http, "POST", url, json=body, headers={**who.headers, **headers})
    assert resp.status == 201, answer
    made: dict[str, Any] = answer["data"]
    return made


async def moved(http: aiohttp.ClientSession, url: str, who: Session) -> dict[str, Any]:
    resp, answer = await call(http, "POST", url, headers=who.headers)
    assert resp.status == 200, answer
    data: dict[str, Any] = answer["data"]
    return data


async def points_of(http: aiohttp.ClientSession, stack: StoryStack, who: Session) -> Any:
    resp, me = await call(http, "GET", f"{stack.api('users')}/v1/users/me", headers=who.headers)
    assert resp.status == 200, me
    return me["data"]["points"]


def ledger_rows(dsn: str, key: str) -> list[tuple[Any, ...]]:
    with mysql_connect(dsn, database=database_name(dsn)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT user_id, delta, balance_after FROM points_ledger WHERE idempotency_key = %s",
            (key,),
        )
        return list(cur.fetchall())


async def test_register_order_offer_job_review_points_through_nginx(
    stack: StoryStack, sink: SmtpSink
) -> None:
    catalog, orders = stack.api("catalog"), stack.api("orders")
    async with aiohttp.ClientSession() as http:
        customer = await registered(http, stack, sink, "CUSTOMER")
        provider = await registered(
            http, stack, sink, "PROVIDER", personal_id_number=f"PID-{uuid.uuid4().hex[:8]}"
        )
        assert await points_of(http, stack, provider) == 0  # points answered over gRPC
        admin = await seeded_admin(http, stack)

        # the catalog, built by the ADMIN; the provider offers the service itself
        kind = await created(http, f"{catalog}/v1/category-types", admin,
                             {"name": f"Home {uuid.uuid4().hex[:6]}"})  # fmt: skip
        category = await created(http, f"{catalog}/v1/categories", admin,
                                 {"type_id": kind["id"], "name": "Plumbing"})  # fmt: skip
        sub = await created(http, f"{catalog}/v1/subcategories", admin,
                            {"category_id": category["id"], "name": "Leaks"})  # fmt: skip
        service = await created(
            http, f"{catalog}/v1/services", admin,
            {"subcategory_id": sub["id"], "name": "Fix a leak", "base_price": "80.50"},
        )  # fmt: skip
        link = f"{catalog}/v1/providers/me/services/{service['id']}"
        resp, body = await call(http, "PUT", link, headers=provider.headers)
        assert resp.status == 204, body

        # order (catalog checks the service, users gives the name snapshot) -> offer
        order_body = {"service_id": service["id"], "description": "The kitchen tap drips",
                      "address": "1 Story Road", "time_start": T0,
                      "time_end": "2031-05-01T11:00:00+00:00"}  # fmt: skip
        order = await created(http, f"{orders}/v1/orders", customer, order_body,
                              **{"Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
        assert (order["status"], order["customer_id"]) == ("OPEN", customer.id)
        assert order["customer_name"] == "Grace Customer"
        offer = await created(
            http, f"{orders}/v1/orders/{order['id']}/offers", provider,
            {"price": "95.50", "currency": "EUR", "book_time": T0, "message": "At nine"},
            **{"Idempotency-Key": uuid.uuid4().hex},
        )  # fmt: skip
        assert (offer["status"], offer["provider_id"]) == ("PENDING", provider.id)

        # accept -> start -> complete
        job = await moved(http, f"{orders}/v1/orders/{order['id']}/offers/{offer['id']}/accept",
                          customer)  # fmt: skip
        assert (job["status"], job["provider_id"]) == ("PENDING", provider.id)
        jobs = f"{orders}/v1/jobs/{job['id']}"
        assert (await moved(http, f"{jobs}/start", provider))["status"] == "IN_PROGRESS"
        assert (await moved(http, f"{jobs}/complete", provider))["status"] == "COMPLETED"
        resp, body = await call(http, "POST", f"{jobs}/complete", headers=provider.headers)
        assert resp.status == 409, body  # completed once only
        resp, body = await call(http, "GET", f"{orders}/v1/orders/{order['id']}",
                                headers=customer.headers)  # fmt: skip
        assert body["data"]["status"] == "COMPLETED"

        # review, and the provider's public rating
        review = await created(http, f"{jobs}/review", customer,
                               {"rating": 5, "comment": "Dry at last"})  # fmt: skip
        assert review["job_id"] == job["id"]
        resp, body = await call(http, "GET", f"{orders}/v1/providers/{provider.id}/reviews")
        assert resp.status == 200, body
        assert [r["id"] for r in body["data"]] == [review["id"]]
        assert body["meta"]["avg_rating"] == "5.00"

        # the award: written with the completion, delivered by the relay to points
        conn = await asyncpg.connect(stack.dsns.orders)
        try:

            async def delivered() -> bool:
                return bool(await conn.fetchval(
                    "SELECT delivered_at IS NOT NULL FROM outbox WHERE aggregate_id = $1",
                    uuid.UUID(job["id"]),
                ))  # fmt: skip

            await wait_until(delivered, f"the award delivered\n{stack.logs()}", PROCESS_MARGIN)
            awards = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE aggregate_id = $1", uuid.UUID(job["id"])
            )
        finally:
            await conn.close()
        assert awards == 1
        assert await points_of(http, stack, provider) == POINTS_PER_JOB
        assert await points_of(http, stack, customer) == 0
        assert ledger_rows(stack.dsns.points, f"job:{job['id']}") == [
            (provider.id, POINTS_PER_JOB, POINTS_PER_JOB)
        ]
