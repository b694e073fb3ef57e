"""Concurrency above capacity on the write paths of orders and chat (run by test_load.py):
3 x the pool (DB_POOL_MAX of the suite's services) concurrent creates, Idempotency-Key
replays among them, and offers that conflict. Every request is answered (2xx, the
documented 409, or a fast 503 with Retry-After) within a bound derived from
DB_ACQUIRE_TIMEOUT, nothing is written twice, nothing acknowledged is missing (read back),
and the service is healthy afterwards."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg

from lib.auth.principal import Role
from tests import pg
from tests.integration.orders_support import offer_body, order_body
from tests.reliability import figures
from tests.reliability.stack import ACQUIRE_TIMEOUT, POOL_MAX
from tests.reliability.world import Actor, Orders, actor, call, catalog_service, talk, ws_url
from tools.time_scale import scaled

CONCURRENT = 3 * int(POOL_MAX)
# a write waits for a connection at most three times (orders' offer: the stored replay,
# the order's visibility, the insert), each bounded by DB_ACQUIRE_TIMEOUT; the margin is
# the work itself and the calls to catalog on a 2-core machine shared with other runs
BOUND = 3 * ACQUIRE_TIMEOUT + scaled(5.0)  # 5 s: the rest of a request at load 3


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    retry_after: str | None
    took: float

    @property
    def id(self) -> str:
        return str(self.body["data"]["id"])


async def send(
    http: aiohttp.ClientSession, url: str, who: Actor, body: Any, **headers: str
) -> Answer:
    started = time.monotonic()
    async with http.post(url, json=body, headers={**who.headers, **headers}) as resp:
        answer = await resp.json(content_type=None)
        return Answer(resp.status, answer, resp.headers.get("Retry-After"),
                      time.monotonic() - started)  # fmt: skip


async def burst(*requests: Any) -> list[Answer]:
    """All at once; each must be answered within BOUND (a hang fails here)."""
    assert len(requests) == CONCURRENT
    return list(await asyncio.wait_for(asyncio.gather(*requests), BOUND))


def judged(answers: list[Answer], allowed: set[int], what: str) -> Counter[int]:
    """Each answer one of `allowed` or a fast 503 with Retry-After; the statuses counted."""
    statuses: Counter[int] = Counter()
    for a in answers:
        assert a.status in allowed | {503}, (what, a.status, a.body)
        assert a.took < BOUND, (what, a.took)
        if a.status == 503:
            assert a.retry_after is not None, (what, a.body)
            assert int(a.retry_after) >= 1, (what, a.retry_after)
        statuses[a.status] += 1
    figures.add("writes at 3 x the pool answered (2xx / 409 / fast 503)", len(answers))
    figures.add("writes at 3 x the pool: fast 503 with Retry-After", statuses[503])
    print(f"{what}: {dict(statuses)}; slowest {max(a.took for a in answers):.2f}s")
    return statuses


async def healthy(http: aiohttp.ClientSession, url: str) -> None:
    async with http.get(f"{url}/health") as resp:
        assert resp.status == 200, await resp.text()


async def rows(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    return list(await pg.fetch(dsn, sql, *args))


async def orders_writes(orders: Any, catalog: Any, orders_dsn: str) -> None:
    customer = actor(Role.CUSTOMER)
    providers = [actor(Role.PROVIDER) for _ in range(CONCURRENT // 2)]
    url = f"{orders.url}/v1/orders"
    timeout = aiohttp.ClientTimeout(total=BOUND)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        service_id = await catalog_service(http, catalog.url, *providers)
        # creates: each key sent twice at once, then replayed twice at once, then once more
        keys = [f"cap-{uuid.uuid4().hex}" for _ in range(CONCURRENT // 2)]
        bodies = {k: order_body(service_id, description=f"Burst {k}") for k in keys}
        waves = []
        for _ in range(2):
            twice = [k for k in keys for _ in range(2)]
            sends = (send(http, url, customer, bodies[k], **{"Idempotency-Key": k}) for k in twice)
            waves.append(await burst(*sends))
        answers = [a for wave in waves for a in wave]
        statuses = judged(answers, {201}, "orders creates with replays")
        assert statuses[201] > 0
        final = {k: await send(http, url, customer, bodies[k], **{"Idempotency-Key": k})
                 for k in keys}  # fmt: skip
        assert all(a.status == 201 for a in final.values()), final
        for i, key in enumerate(keys):  # every 201 of a key is the same order
            given = {a.id for wave in waves for a in wave[2 * i : 2 * i + 2] if a.status == 201}
            assert given <= {final[key].id}, (key, given, final[key].id)
        stored = await rows(orders_dsn, "SELECT id FROM orders WHERE customer_id = $1",
                            customer.id)  # fmt: skip
        assert sorted(str(r["id"]) for r in stored) == sorted(a.id for a in final.values())

        # offers on one order: half the providers send one request twice with one key
        # (a replay), the other half twice without (one 201, one documented 409)
        order = final[keys[0]].id
        offers = f"{url}/{order}/offers"
        keyed = {p.id: f"offer-{uuid.uuid4().hex}" for p in providers[: len(providers) // 2]}

        def offer(p: Actor) -> Any:
            extra = {"Idempotency-Key": keyed[p.id]} if p.id in keyed else {}
            return send(http, offers, p, offer_body(), **extra)

        made = await burst(*(offer(p) for p in providers for _ in range(2)))
        statuses = judged(made, {201, 409}, "offer creates with replays and conflicts")
        assert statuses[201] > 0
        by_provider: dict[uuid.UUID, list[Answer]] = {p.id: [] for p in providers}
        for p, a in zip([p for p in providers for _ in range(2)], made, strict=True):
            by_provider[p.id].append(a)
        for pid, pair in by_provider.items():
            created = {a.id for a in pair if a.status == 201}
            assert len(created) <= 1, (pid, pair)  # a replay is the same offer
            if pid not in keyed:
                assert [a.status for a in pair].count(201) <= 1, pair
        stored_offers = await rows(orders_dsn, "SELECT id, provider_id FROM offers WHERE "
                                   "order_id = $1", uuid.UUID(order))  # fmt: skip
        per_provider = Counter(r["provider_id"] for r in stored_offers)
        assert max(per_provider.values()) == 1, per_provider  # nothing written twice
        acknowledged = {a.id for a in made if a.status == 201}
        assert {str(r["id"]) for r in stored_offers} == acknowledged  # nothing lost
        await healthy(http, orders.url)
        listed = await call(http, "GET", f"{offers}?limit=100", customer, 200)
        assert {o["id"] for o in listed["data"]} == acknowledged


async def chat_writes(chat: Any, orders: Any, catalog: Any, chat_dsn: str) -> None:
    """Both participants post at once, a few with an Idempotency-Key sent twice; a socket
    open meanwhile receives each stored message once, numbered without gaps."""
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    timeout = aiohttp.ClientTimeout(total=BOUND)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        service_id = await catalog_service(http, catalog.url, provider)
        conversation = await talk(Orders(http, orders.url, service_id, customer, provider),
                                  chat.url)  # fmt: skip
        url = f"{chat.url}/v1/conversations/{conversation.id}/messages"
        token = provider.headers["Authorization"].removeprefix("Bearer ")
        socket = await http.ws_connect(
            ws_url(chat.url, conversation.id), protocols=("fixup.bearer", token)
        )
        async with socket:
            keys = [f"msg-{uuid.uuid4().hex}" for _ in range(2)]
            replays = [
                send(http, url, customer, {"body": f"keyed {k}"}, **{"Idempotency-Key": k})
                for k in keys
                for _ in range(2)
            ]
            plain = [
                send(http, url, (customer, provider)[i % 2], {"body": f"message {i}"})
                for i in range(CONCURRENT - len(replays))
            ]
            answers = await burst(*replays, *plain)
            statuses = judged(answers, {201}, "chat message posts with replays")
            assert statuses[201] > 0
            for i in range(len(keys)):
                pair = {a.id for a in answers[2 * i : 2 * i + 2] if a.status == 201}
                assert len(pair) <= 1, pair  # the replay answered the first message
            acknowledged = {a.id for a in answers if a.status == 201}
            pushed = [await socket.receive_json(timeout=BOUND) for _ in acknowledged]
        assert sorted(m["data"]["id"] for m in pushed) == sorted(acknowledged)  # each once
        stored = await rows(chat_dsn, "SELECT id, seq FROM messages WHERE conversation_id = $1 "
                            "ORDER BY seq", uuid.UUID(conversation.id))  # fmt: skip
        assert {str(r["id"]) for r in stored} == acknowledged  # nothing lost, nothing twice
        assert [r["seq"] for r in stored] == list(range(1, len(stored) + 1))  # no gaps
        await healthy(http, chat.url)
        assert {m["id"] for m in await conversation.messages()} == acknowledged


async def orders_updates(orders: Any, catalog: Any) -> None:
    """3 x the pool PATCHes of one order, all with the same If-Match: one wins, the rest are
    412 (stale) or a fast 503; the order ends as the winner wrote it, version + 1."""
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    timeout = aiohttp.ClientTimeout(total=BOUND)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        service_id = await catalog_service(http, catalog.url, provider)
        made = await send(http, f"{orders.url}/v1/orders", customer, order_body(service_id))
        assert made.status == 201, made.body
        url, version = f"{orders.url}/v1/orders/{made.id}", made.body["data"]["version"]

        async def patch(n: int) -> Answer:
            started = time.monotonic()
            headers = {**customer.headers, "If-Match": f'"{version}"'}
            body = {"description": f"Update number {n}"}
            async with http.patch(url, json=body, headers=headers) as resp:
                answer = await resp.json(content_type=None)
                return Answer(resp.status, answer, resp.headers.get("Retry-After"),
                              time.monotonic() - started)  # fmt: skip

        answers = await burst(*(patch(n) for n in range(CONCURRENT)))
        statuses = judged(answers, {200, 412}, "orders PATCHes with one If-Match")
        winners = [a for a in answers if a.status == 200]
        # the version check decides: one winner, unless every would-be winner was shed
        assert len(winners) == 1 or (not winners and statuses[503] > 0), statuses
        assert winners or statuses[412] == 0, statuses  # stale only after a winner
        for a in answers:
            if a.status == 412:
                assert a.body["code"] == "PRECONDITION_FAILED", a.body
        now = await call(http, "GET", url, customer, 200)
        if winners:
            assert now["data"]["description"] == winners[0].body["data"]["description"]
        assert now["data"]["version"] == version + len(winners)
        await healthy(http, orders.url)


async def users_registrations(users: Any, users_dsn: str) -> None:
    """3 x the pool registrations at once, each email twice with one Idempotency-Key: one
    account per email (the replay answers the first 201), argon2's bounded queue or the pool
    may shed some with a fast 503; every acknowledged account is there exactly once."""
    url = f"{users.url}/v1/auth/register"
    emails = [f"cap{uuid.uuid4().hex[:12]}@fixup.test" for _ in range(CONCURRENT // 2)]
    anonymous = Actor(uuid.uuid4(), Role.CUSTOMER, headers={})  # no Authorization sent
    timeout = aiohttp.ClientTimeout(total=BOUND)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        def register(email: str) -> Any:
            account = {
                "email": email, "password": "capacity-pass-1", "first_name": "Ada",
                "last_name": "Lovelace", "phone_number": "+1 555 0100", "role": "CUSTOMER",
            }  # fmt: skip
            return send(http, url, anonymous, account, **{"Idempotency-Key": f"reg-{email}"})

        answers = await burst(*(register(e) for e in emails for _ in range(2)))
        judged(answers, {201}, "registrations with replays")
        for i, email in enumerate(emails):
            created = {a.id for a in answers[2 * i : 2 * i + 2] if a.status == 201}
            assert len(created) <= 1, (email, created)  # the replay is the same account
        stored = await rows(users_dsn, "SELECT id::text, email FROM users WHERE email = ANY($1)",
                            emails)  # fmt: skip
        assert len({r["email"] for r in stored}) == len(stored)  # no email twice
        acknowledged = {a.id for a in answers if a.status == 201}
        assert acknowledged <= {r["id"] for r in stored}  # nothing acknowledged is missing
        await healthy(http, users.url)


async def chat_conversation_creates(chat: Any, orders: Any, catalog: Any, chat_dsn: str) -> None:
    """3 x the pool creates of one conversation at once, by both participants: exactly one
    201, the rest 200 with that same conversation (or a fast 503); one row."""
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    timeout = aiohttp.ClientTimeout(total=BOUND)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        service_id = await catalog_service(http, catalog.url, provider)
        steps = Orders(http, orders.url, service_id, customer, provider)
        order_id = (await steps.order())["id"]
        await steps.offer(order_id)
        body = {"order_id": order_id, "provider_id": str(provider.id)}
        url = f"{chat.url}/v1/conversations"
        answers = await burst(
            *(send(http, url, (customer, provider)[i % 2], body) for i in range(CONCURRENT))
        )
        statuses = judged(answers, {200, 201}, "chat conversation creates of one pair")
        assert statuses[201] <= 1, statuses
        given = {a.id for a in answers if a.status in (200, 201)}
        stored = await rows(chat_dsn, "SELECT id::text FROM conversations WHERE order_id = $1",
                            uuid.UUID(order_id))  # fmt: skip
        assert len(stored) == 1, stored
        assert given <= {stored[0]["id"]}, given
        await healthy(http, chat.url)
