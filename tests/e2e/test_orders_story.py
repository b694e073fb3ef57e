"""The whole story, black box, through real NGINX and real processes (users, catalog,
orders with its outbox relay, points over gRPC, chat): a customer and a provider register,
verify by mail and log in; an ADMIN (seeded) builds the catalog; the provider offers the
service; order -> offer -> accept -> start -> complete -> review; they chat (a POST and a
WebSocket frame); the provider's points grow by POINTS_PER_JOB exactly once. Every domain
counter (issue 43) moves by exactly the story's facts: each Idempotency-Key replay, a
second order's job cancelled, a wrong password, a refresh token used twice, a logout and
a password change included."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.chat import facts as chat_facts
from services.orders import facts as orders_facts
from services.points import facts as points_facts
from services.users import facts as users_facts
from tests import pg
from tests.e2e.gateway_stack import wait_until
from tests.e2e.story_stack import (
    Dsns,
    Session,
    StoryStack,
    call,
    login,
    running_story_stack,
    seeded_admin_email,
)
from tests.integration.smtp_support import SmtpSink, smtp_sink, token_in
from tools.local.databases import database_name
from tools.local.dbadmin import mysql_connect
from tools.local.service_process import PROCESS_MARGIN

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
    dsns = Dsns(*(migrated_db(db) for db in ("users", "catalog", "orders", "points", "chat")))
    smtp = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sink.port), "SMTP_TIMEOUT": "2"}
    tmp = tmp_path_factory.mktemp("orders_story")
    async with running_story_stack(
        tmp, dsns, users_env=smtp, points_per_job=POINTS_PER_JOB
    ) as running:
        yield running


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


# the domain counters (issue 43): name -> the service whose /metrics has it
FACTS = {
    **{f.name: "users" for f in users_facts.ALL},
    **{f.name: "orders" for f in orders_facts.ALL},
    **{f.name: "chat" for f in chat_facts.ALL},
    **{f.name: "points" for f in points_facts.ALL},
}
Sample = tuple[str, frozenset[tuple[str, str]]]  # name, labels but `service`


def fact(name: str, **labels: str) -> Sample:
    return name, frozenset(labels.items())


async def domain_counters(http: aiohttp.ClientSession, stack: StoryStack) -> dict[Sample, float]:
    """Every domain counter's samples, read from the /metrics of the service owning it."""
    out: dict[Sample, float] = {}
    for service in sorted(set(FACTS.values())):
        async with http.get(f"{stack.api(service, direct=True)}/metrics") as resp:
            assert resp.status == 200, service
            text = await resp.text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if FACTS.get(sample.name) == service:
                    assert sample.labels.pop("service") == service, sample
                    out[fact(sample.name, **sample.labels)] = sample.value
    assert {name for name, _ in out} == set(FACTS), "a domain counter is missing"
    return out


async def replayed(
    http: aiohttp.ClientSession, url: str, who: Session, body: dict[str, Any], key: str
) -> None:
    """The same create again with its Idempotency-Key: the first answer, nothing new."""
    resp, answer = await call(
        http, "POST", url, json=body, headers={**who.headers, "Idempotency-Key": key}
    )
    assert (resp.status, resp.headers.get("Idempotent-Replayed")) == (201, "true"), answer


async def tokens(http: aiohttp.ClientSession, users: str, email: str) -> dict[str, Any]:
    resp, body = await call(
        http, "POST", f"{users}/v1/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert resp.status == 200, body
    pair: dict[str, Any] = body["data"]
    return pair


async def sessions_end(http: aiohttp.ClientSession, users: str, email: str) -> None:
    """A wrong password; a refresh token used twice (its session revoked); a logout."""
    resp, body = await call(
        http, "POST", f"{users}/v1/auth/login", json={"email": email, "password": "wrong one"}
    )
    assert resp.status == 401, body
    first = (await tokens(http, users, email))["refresh_token"]
    for status in (200, 401):  # the second use is the reuse
        resp, body = await call(
            http, "POST", f"{users}/v1/auth/refresh", json={"refresh_token": first}
        )
        assert resp.status == status, body
    other = (await tokens(http, users, email))["refresh_token"]
    resp, body = await call(http, "POST", f"{users}/v1/auth/logout", json={"refresh_token": other})
    assert resp.status == 204, body


async def chatted(
    http: aiohttp.ClientSession, stack: StoryStack, order_id: str, customer: Session,
    provider: Session,
) -> None:  # fmt: skip
    """The customer's socket gets its own WebSocket message and the provider's POST (sent
    twice with one key: stored once)."""
    chat = stack.api("chat", direct=True)
    conversation = await created(http, f"{chat}/v1/conversations", customer,
                                 {"order_id": order_id, "provider_id": provider.id})  # fmt: skip
    token = customer.headers["Authorization"].removeprefix("Bearer ")
    path = f"{chat}/v1/conversations/{conversation['id']}/ws"
    async with http.ws_connect(path, protocols=("fixup.bearer", token)) as ws:
        await ws.send_json({"type": "send", "body": "Thanks!"})
        url, key = f"{chat}/v1/conversations/{conversation['id']}/messages", uuid.uuid4().hex
        await created(http, url, provider, {"body": "You are welcome"}, **{"Idempotency-Key": key})
        await replayed(http, url, provider, {"body": "You are welcome"}, key)
        bodies = []
        for _ in range(2):
            frame = await ws.receive_json(timeout=PROCESS_MARGIN)
            assert frame["type"] == "message", frame
            bodies.append(frame["data"]["body"])
        assert sorted(bodies) == ["Thanks!", "You are welcome"]  # either may commit first


async def test_register_order_offer_job_review_points_through_nginx(
    stack: StoryStack, sink: SmtpSink
) -> None:
    catalog, orders = stack.api("catalog"), stack.api("orders")
    async with aiohttp.ClientSession() as http:
        before = await domain_counters(http, stack)
        customer = await registered(http, stack, sink, "CUSTOMER")
        provider = await registered(
            http, stack, sink, "PROVIDER", personal_id_number=f"PID-{uuid.uuid4().hex[:8]}"
        )
        assert await points_of(http, stack, provider) == 0  # points answered over gRPC
        admin_email = await seeded_admin_email(stack.dsns.users, PASSWORD)
        admin = await login(http, stack.api("users"), admin_email, PASSWORD)

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
        key = uuid.uuid4().hex
        order = await created(http, f"{orders}/v1/orders", customer, order_body,
                              **{"Idempotency-Key": key})  # fmt: skip
        assert (order["status"], order["customer_id"]) == ("OPEN", customer.id)
        assert order["customer_name"] == "Grace Customer"
        await replayed(http, f"{orders}/v1/orders", customer, order_body, key)
        offers, key = f"{orders}/v1/orders/{order['id']}/offers", uuid.uuid4().hex
        offer_body = {"price": "95.50", "currency": "EUR", "book_time": T0, "message": "At nine"}
        offer = await created(http, offers, provider, offer_body, **{"Idempotency-Key": key})
        assert (offer["status"], offer["provider_id"]) == ("PENDING", provider.id)
        await replayed(http, offers, provider, offer_body, key)

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
        review_body, key = {"rating": 5, "comment": "Dry at last"}, uuid.uuid4().hex
        review = await created(http, f"{jobs}/review", customer, review_body,
                               **{"Idempotency-Key": key})  # fmt: skip
        assert review["job_id"] == job["id"]
        await replayed(http, f"{jobs}/review", customer, review_body, key)
        resp, body = await call(http, "GET", f"{orders}/v1/providers/{provider.id}/reviews")
        assert resp.status == 200, body
        assert [r["id"] for r in body["data"]] == [review["id"]]
        assert body["meta"]["avg_rating"] == "5.00"

        # the award: written with the completion, delivered by the relay to points
        async with pg.connected(stack.dsns.orders) as conn:

            async def delivered() -> bool:
                return bool(await conn.fetchval(
                    "SELECT delivered_at IS NOT NULL FROM outbox WHERE aggregate_id = $1",
                    uuid.UUID(job["id"]),
                ))  # fmt: skip

            await wait_until(delivered, f"the award delivered\n{stack.logs()}", PROCESS_MARGIN)
            awards = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE aggregate_id = $1", uuid.UUID(job["id"])
            )
        assert awards == 1
        assert await points_of(http, stack, provider) == POINTS_PER_JOB
        assert await points_of(http, stack, customer) == 0
        assert ledger_rows(stack.dsns.points, f"job:{job['id']}") == [
            (provider.id, POINTS_PER_JOB, POINTS_PER_JOB)
        ]

        await chatted(http, stack, order["id"], customer, provider)
        # a second order, whose job the customer cancels
        again = await created(http, f"{orders}/v1/orders", customer, order_body)
        offer = await created(http, f"{orders}/v1/orders/{again['id']}/offers", provider,
                              offer_body)  # fmt: skip
        job = await moved(http, f"{orders}/v1/orders/{again['id']}/offers/{offer['id']}/accept",
                          customer)  # fmt: skip
        cancelled = await moved(http, f"{orders}/v1/jobs/{job['id']}/cancel", customer)
        assert cancelled["status"] == "CANCELLED"
        await sessions_end(http, stack.api("users"), customer.email)
        resp, body = await call(
            http, "POST", f"{stack.api('users')}/v1/users/me/password", headers=customer.headers,
            json={"old_password": PASSWORD, "new_password": "another horse battery"},
        )  # fmt: skip
        assert resp.status == 204, body

        # each fact counted once, after its commit; every other domain series still 0
        story = {
            fact("users_logins_total", outcome="ok"): 5,  # three sessions, two in sessions_end
            fact("users_logins_total", outcome="failed"): 1,
            fact("users_refresh_token_reuse_total"): 1,
            fact("users_revocations_total", reason="refresh_reuse"): 1,
            fact("users_revocations_total", reason="logout"): 1,
            fact("users_revocations_total", reason="password_changed"): 1,
            fact("users_mails_total", outcome="sent"): 2,  # the two verification mails
            fact("orders_created_total"): 2,
            fact("orders_offers_made_total"): 2,
            fact("orders_offers_accepted_total"): 2,
            fact("orders_jobs_completed_total"): 1,
            fact("orders_jobs_cancelled_total", role="customer"): 1,
            fact("orders_reviews_total", rating="5.0"): 1,
            fact("chat_messages_total", via="websocket"): 1,
            fact("chat_messages_total", via="http"): 1,
            fact("chat_messages_delivered_total"): 2,  # both, to the customer's socket
            fact("points_awarded_total"): POINTS_PER_JOB,
        }
        increments: dict[Sample, float] = {}

        async def counted() -> bool:  # the relay marks a mail sent just after the sink has it
            nonlocal increments
            after = await domain_counters(http, stack)
            increments = {s: v - before.get(s, 0) for s, v in after.items() if v != before.get(s)}
            return increments == story

        try:
            await wait_until(counted, "the story's domain counts", PROCESS_MARGIN)
        except AssertionError:
            assert increments == story  # the difference, named
            raise
