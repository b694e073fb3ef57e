"""The chat API over HTTP against real PostgreSQL and the real orders and catalog apps on
loopback: conversations (participants checked with orders), keyset paging under
concurrent writers, bodies, idempotency, authorization, orders down, a pool too small."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from tests import pg
from tests.integration.chat_support import (
    ChatFactory,
    World,
    conversation,
    eventually,
    post_message,
    start_conversation,
)
from tests.integration.orders_support import Caller
from tests.proxy import TcpProxy


async def seqs(dsn: str, conversation_id: str) -> list[int]:
    rows = await pg.fetch(
        dsn,
        "SELECT seq FROM messages WHERE conversation_id = $1 ORDER BY seq",
        uuid.UUID(conversation_id),
    )
    return [row["seq"] for row in rows]


async def page(chat: Any, conversation_id: str, who: Caller, **query: Any) -> dict[str, Any]:
    resp = await chat.get(
        f"/v1/conversations/{conversation_id}/messages", params=query, headers=who.headers
    )
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


# --- conversations ---------------------------------------------------------------------


async def test_create_returns_the_existing_conversation(chat: Any, chat_world: World) -> None:
    resp = await start_conversation(chat, chat_world.customer, chat_world.order_id, chat_world.p1)
    assert resp.status == 201, await resp.text()
    made = (await resp.json())["data"]
    assert resp.headers["Location"] == f"/v1/conversations/{made['id']}"
    assert made["order_id"] == chat_world.order_id
    assert (made["customer_id"], made["provider_id"]) == (
        str(chat_world.customer.id),
        str(chat_world.p1.id),
    )
    assert made["last_message_at"] is None
    assert made["created_at"].endswith("Z")
    assert set(made) == {
        "id", "order_id", "customer_id", "provider_id", "created_at", "last_message_at"
    }  # fmt: skip

    for who in (chat_world.customer, chat_world.p1):  # either side, again: the same one, 200
        again = await start_conversation(chat, who, chat_world.order_id, chat_world.p1)
        assert again.status == 200, await again.text()
        assert (await again.json())["data"] == made

    other = await start_conversation(chat, chat_world.p2, chat_world.order_id, chat_world.p2)
    assert other.status == 201, await other.text()
    assert (await other.json())["data"]["id"] != made["id"]

    resp = await chat.get(f"/v1/conversations/{made['id']}", headers=chat_world.p1.headers)
    assert resp.status == 200
    assert (await resp.json())["data"] == made

    mine = await chat.get("/v1/conversations", headers=chat_world.customer.headers)
    listed = await mine.json()
    assert mine.status == 200
    assert listed["meta"] == {"total": 2, "limit": 100, "page": 1}
    assert {c["id"] for c in listed["data"]} == {made["id"], (await other.json())["data"]["id"]}
    theirs = await (await chat.get("/v1/conversations", headers=chat_world.p1.headers)).json()
    assert [c["id"] for c in theirs["data"]] == [made["id"]]

    # ordering by activity: the conversation with a message comes first (desc)
    await post_message(chat, made["id"], chat_world.p1, "hello")
    by_activity = await chat.get(
        "/v1/conversations?orderby=last_message_at&sort=desc", headers=chat_world.customer.headers
    )
    assert (await by_activity.json())["data"][0]["id"] == made["id"]
    for bad in ("orderby=id", "page=0", "limit=1001", "nope=1", "sort=up"):
        resp = await chat.get(f"/v1/conversations?{bad}", headers=chat_world.customer.headers)
        assert resp.status == 400, bad
        assert (await resp.json())["code"] == "VALIDATION_ERROR"


async def test_create_refused(chat: Any, chat_world: World) -> None:
    cases = [
        (chat_world.p3, chat_world.p3, "a provider without an offer"),
        (chat_world.customer, chat_world.p3, "the customer with a provider without an offer"),
        (chat_world.outsider, chat_world.p1, "another customer"),
        (chat_world.p2, chat_world.p1, "a provider for another provider"),
    ]
    for who, provider, why in cases:
        resp = await start_conversation(chat, who, chat_world.order_id, provider)
        assert resp.status == 404, why
        assert (await resp.json())["code"] == "NOT_FOUND"
    resp = await start_conversation(chat, chat_world.customer, str(uuid.uuid4()), chat_world.p1)
    assert resp.status == 404
    assert "order_id" in (await resp.json())["detail"]

    path, good = (
        "/v1/conversations",
        {"order_id": chat_world.order_id, "provider_id": str(chat_world.p1.id)},
    )
    headers = chat_world.customer.headers
    for body, status in [
        ({**good, "extra": 1}, 400),
        ({"order_id": chat_world.order_id}, 400),
        ({**good, "provider_id": "nope"}, 400),
        ({**good, "customer_id": str(chat_world.customer.id)}, 403),
    ]:
        resp = await chat.post(path, json=body, headers=headers)
        assert resp.status == status, body
        assert resp.content_type == "application/problem+json"
    resp = await chat.post(path, json=good)
    assert resp.status == 401
    assert (await chat.get("/v1/conversations")).status == 401


async def test_orders_down_is_a_fast_503_and_existing_conversations_still_work(
    chat_factory: ChatFactory, chat_world: World, chat_orders_proxy: TcpProxy
) -> None:
    chat = await chat_factory(orders_breaker_threshold=2, orders_cache_ttl=60)
    made = await conversation(chat, chat_world)  # the customer's answer from orders is cached
    await chat_orders_proxy.stop()

    cached = await start_conversation(chat, chat_world.customer, chat_world.order_id, chat_world.p2)
    assert cached.status == 201, await cached.text()  # the cache answered

    codes = []
    for _ in range(3):
        started = time.monotonic()
        resp = await start_conversation(chat, chat_world.p3, chat_world.order_id, chat_world.p3)
        assert resp.status == 503, await resp.text()
        assert time.monotonic() - started < 2.0
        assert int(resp.headers["Retry-After"]) >= 1
        codes.append((await resp.json())["code"])
    assert codes[0] == "SERVICE_UNAVAILABLE"
    assert codes[-1] == "CIRCUIT_OPEN"  # the breaker opened: no more waiting on orders

    # a conversation that exists needs nothing of orders
    again = await start_conversation(chat, chat_world.p1, chat_world.order_id, chat_world.p1)
    assert again.status == 200
    assert (await again.json())["data"]["id"] == made
    assert (await post_message(chat, made, chat_world.p1, "still here")).status == 201
    resp = await chat.get(f"/v1/conversations/{made}/messages", headers=chat_world.customer.headers)
    assert [m["body"] for m in (await resp.json())["data"]] == ["still here"]


async def test_non_participants_get_404_on_every_route(chat: Any, chat_world: World) -> None:
    made = await conversation(chat, chat_world)
    await post_message(chat, made, chat_world.customer, "private")
    strangers = [chat_world.p2, chat_world.p3, chat_world.outsider]
    for who in strangers:
        for method, path, body in [
            ("GET", f"/v1/conversations/{made}", None),
            ("GET", f"/v1/conversations/{made}/messages", None),
            ("POST", f"/v1/conversations/{made}/messages", {"body": "let me in"}),
        ]:
            resp = await chat.request(method, path, json=body, headers=who.headers)
            assert resp.status == 404, (method, path)
            assert (await resp.json())["code"] == "NOT_FOUND"
        listed = await (await chat.get("/v1/conversations", headers=who.headers)).json()
        assert made not in {c["id"] for c in listed["data"]}
    # idempotent POST by a stranger: 404 too, and nothing stored
    resp = await chat.post(
        f"/v1/conversations/{made}/messages",
        json={"body": "x"},
        headers={**chat_world.p2.headers, "Idempotency-Key": "k-stranger"},
    )
    assert resp.status == 404
    unknown = uuid.uuid4()
    resp = await chat.get(f"/v1/conversations/{unknown}/messages", headers=chat_world.p1.headers)
    assert resp.status == 404
    resp = await chat.get("/v1/conversations/not-a-uuid", headers=chat_world.p1.headers)
    assert resp.status == 400
    resp = await chat.get(f"/v1/conversations/{made}/messages", headers=chat_world.customer.headers)
    assert [m["body"] for m in (await resp.json())["data"]] == ["private"]


# --- messages ------------------------------------------------------------------------


async def test_message_bodies(chat: Any, chat_world: World, chat_dsn: str) -> None:
    made = await conversation(chat, chat_world)
    path = f"/v1/conversations/{made}/messages"
    bad_bodies: list[Any] = [
        {"body": ""},
        {"body": "   \n\t "},
        {"body": "\u3000\u00a0"},  # Unicode spaces are blank too
        {"body": "b" * 4001},
        {"body": "nul\x00here"},
        {"body": "bell\x07"},
        {"body": 42},
        {"body": None},
        {},
        {"body": "ok", "author_id": str(chat_world.customer.id)},
        {"body": "ok", "extra": True},
    ]
    for body in bad_bodies:
        resp = await chat.post(path, json=body, headers=chat_world.customer.headers)
        assert resp.status in (400, 403), body
        problem = await resp.json()
        assert resp.content_type == "application/problem+json"
        assert problem["code"] in ("VALIDATION_ERROR", "FORBIDDEN")
    assert await seqs(chat_dsn, made) == []  # nothing partial

    emoji = "\U0001f600" * 4000  # 4000 code points (16000 bytes)
    good = [" trimmed \n", "line one\nline two\ttab", emoji, " " + "c" * 4000 + "\n"]
    for body in good:
        resp = await post_message(chat, made, chat_world.customer, body)
        assert resp.status == 201, await resp.text()
        message = (await resp.json())["data"]
        assert message["body"] == body.strip()
        assert message["author_id"] == str(chat_world.customer.id)
        assert message["conversation_id"] == made
        assert set(message) == {
            "id", "conversation_id", "author_id", "body", "cursor", "created_at"
        }  # fmt: skip
    assert await seqs(chat_dsn, made) == [1, 2, 3, 4]
    got = await chat.get(f"/v1/conversations/{made}", headers=chat_world.customer.headers)
    assert (await got.json())["data"]["last_message_at"] is not None


async def test_idempotent_post(chat: Any, chat_world: World, chat_dsn: str) -> None:
    made = await conversation(chat, chat_world)
    path = f"/v1/conversations/{made}/messages"
    headers = {**chat_world.p1.headers, "Idempotency-Key": "msg-1"}
    first = await chat.post(path, json={"body": "once"}, headers=headers)
    assert first.status == 201
    replies = await asyncio.gather(
        *(chat.post(path, json={"body": "once"}, headers=headers) for _ in range(5))
    )
    for reply in replies:
        assert reply.status == 201
        assert reply.headers["Idempotent-Replayed"] == "true"
        assert await reply.json() == await first.json()
    other = await chat.post(path, json={"body": "twice"}, headers=headers)
    assert other.status == 409
    # the same key from another caller is another key
    theirs = await chat.post(
        path,
        json={"body": "once"},
        headers={**chat_world.customer.headers, "Idempotency-Key": "msg-1"},
    )
    assert theirs.status == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert await seqs(chat_dsn, made) == [1, 2]
    bad = await chat.post(path, json={"body": "x"}, headers={**headers, "Idempotency-Key": " "})
    assert bad.status == 400


async def test_idempotent_conversation_create(chat: Any, chat_world: World) -> None:
    """Idempotency-Key on POST /v1/conversations: a repeat returns the first answer (201
    with its Location, marked replayed), whether the conversation existed before or not;
    the same key for another pair is a 409 and creates nothing."""
    customer = {**chat_world.customer.headers, "Idempotency-Key": "conv-1"}
    body = {"order_id": chat_world.order_id, "provider_id": str(chat_world.p2.id)}
    first = await chat.post("/v1/conversations", json=body, headers=customer)
    assert first.status == 201, await first.text()
    replies = await asyncio.gather(
        *(chat.post("/v1/conversations", json=body, headers=customer) for _ in range(4))
    )
    for reply in replies:
        assert reply.status == 201, await reply.text()
        assert reply.headers["Idempotent-Replayed"] == "true"
        assert reply.headers["Location"] == first.headers["Location"]
        assert await reply.json() == await first.json()
    other = {"order_id": chat_world.order_id, "provider_id": str(chat_world.p1.id)}
    conflict = await chat.post("/v1/conversations", json=other, headers=customer)
    assert conflict.status == 409, await conflict.text()
    mine = await chat.get("/v1/conversations", headers=chat_world.customer.headers)
    pairs = [c["provider_id"] for c in (await mine.json())["data"]]
    assert pairs.count(str(chat_world.p2.id)) == 1
    # an existing pair under a new key: 200 remembered as 200, replayed as 200
    again = {**customer, "Idempotency-Key": "conv-2"}
    existed = await chat.post("/v1/conversations", json=body, headers=again)
    assert existed.status == 200
    assert "Idempotent-Replayed" not in existed.headers
    replay = await chat.post("/v1/conversations", json=body, headers=again)
    assert replay.status == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert await replay.json() == await existed.json() == await first.json()
    swapped = await chat.post("/v1/conversations", json=other, headers=again)
    assert swapped.status == 409


async def test_paging_both_ways_while_others_write(
    chat: Any, chat_world: World, chat_dsn: str
) -> None:
    made = await conversation(chat, chat_world)
    authors = [chat_world.customer, chat_world.p1]
    gate = asyncio.Semaphore(6)
    posted: list[str] = []

    async def write(n: int) -> None:
        async with gate:
            resp = await post_message(chat, made, authors[n % 2], f"m{n}")
            assert resp.status == 201, await resp.text()
            posted.append((await resp.json())["data"]["id"])

    await asyncio.gather(*(write(n) for n in range(60)))
    assert await seqs(chat_dsn, made) == list(range(1, 61))  # concurrent writers, no gap

    async def keep_writing(start: int, count: int) -> None:
        await asyncio.gather(*(write(n) for n in range(start, start + count)))

    # newest first, while 40 more arrive: exactly the messages there at the first page
    writers = asyncio.create_task(keep_writing(60, 40))
    newest_first: list[dict[str, Any]] = []
    body = await page(chat, made, chat_world.customer, limit=7)
    newest_first += body["data"]
    while body["meta"]["next_cursor"] is not None:
        assert body["meta"]["limit"] == 7
        body = await page(
            chat, made, chat_world.customer, limit=7, before=body["meta"]["next_cursor"]
        )
        newest_first += body["data"]
    ids = [m["id"] for m in newest_first]
    assert len(ids) == len(set(ids))  # no duplicates
    assert len(ids) >= 60

    # oldest first from the oldest message, while the writers go on: the catch-up
    oldest = newest_first[-1]
    caught: list[dict[str, Any]] = [oldest]
    cursor = oldest["cursor"]
    while True:
        body = await page(chat, made, chat_world.p1, limit=9, after=cursor)
        caught += body["data"]
        if body["data"]:
            cursor = body["data"][-1]["cursor"]
        if body["meta"]["next_cursor"] is None:
            if writers.done():
                body = await page(chat, made, chat_world.p1, limit=9, after=cursor)
                caught += body["data"]
                if not body["data"]:
                    break
            else:
                await asyncio.wait([writers], timeout=0.05)  # let the writers go on
        else:
            assert body["meta"]["next_cursor"] == cursor
    await writers

    truth = [
        str(r["id"])
        for r in await pg.fetch(
            chat_dsn,
            "SELECT id FROM messages WHERE conversation_id = $1 ORDER BY seq",
            uuid.UUID(made),
        )
    ]
    assert len(truth) == 100
    assert [m["id"] for m in caught] == truth  # every message once, in order: no gap, no dup
    assert ids == truth[: len(ids)][::-1]  # the newest-first walk: a contiguous run from 1
    assert sorted(posted) == sorted(truth)

    # the cursor of the newest: nothing after it; before the oldest: nothing
    last = await page(chat, made, chat_world.p1, after=caught[-1]["cursor"])
    assert last == {"data": [], "meta": {"limit": 100, "next_cursor": None}}
    first = await page(chat, made, chat_world.p1, before=caught[0]["cursor"])
    assert first["data"] == []
    path = f"/v1/conversations/{made}/messages"
    for bad in [
        {"before": cursor, "after": cursor},
        {"after": "nope"},
        {"before": ""},
        {"after": "djE6LTE"},  # "v1:-1"
        {"after": "djE6MDE"},  # "v1:01": not a cursor we issue
        {"limit": 0},
        {"limit": 1001},
        {"page": 2},
    ]:
        resp = await chat.get(path, params=bad, headers=chat_world.p1.headers)
        assert resp.status == 400, bad
        assert (await resp.json())["code"] == "VALIDATION_ERROR"


async def test_posts_past_the_pool_are_answered(
    chat_factory: ChatFactory, chat_world: World, chat_dsn: str
) -> None:
    """A pool of 2 and 40 concurrent posts while the conversation's row is locked from
    outside: two posts hold the pool waiting for the lock, the other 38 get a fast 503
    (the acquire timeout), and the two finish once the lock goes."""
    chat = await chat_factory(db_pool_min=1, db_pool_max=2, db_acquire_timeout=0.5)
    made = await conversation(chat, chat_world)

    async def one(n: int) -> tuple[int, float, dict[str, str]]:
        started = time.monotonic()
        resp = await post_message(chat, made, chat_world.customer, f"burst {n}")
        await resp.read()
        return resp.status, time.monotonic() - started, dict(resp.headers)

    async with pg.connected(chat_dsn) as locker, locker.transaction():
        await locker.execute(
            "SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", uuid.UUID(made)
        )
        tasks = [asyncio.create_task(one(n)) for n in range(40)]

        async def refused() -> bool:
            return sum(t.done() for t in tasks) >= 38

        await eventually(refused, "38 posts answered while two hold the pool")
    results = await asyncio.gather(*tasks)
    statuses = [status for status, _, _ in results]
    assert sorted(statuses) == [201] * 2 + [503] * 38, statuses
    for status, took, headers in results:
        if status == 503:
            assert took < 5.0  # the acquire timeout (0.5 s), not the lock
            assert int(headers["Retry-After"]) >= 1
    assert await seqs(chat_dsn, made) == [1, 2]


async def test_a_cookie_caller_is_checked_with_orders_as_itself(
    chat: Any, chat_world: World
) -> None:
    """The access cookie's token is forwarded to orders as a bearer token."""
    token = chat_world.customer.headers["Authorization"].removeprefix("Bearer ")
    body = {"order_id": chat_world.order_id, "provider_id": str(chat_world.p2.id)}
    cookie = {"Cookie": f"fixup_access={token}"}
    resp = await chat.post("/v1/conversations", json=body, headers=cookie)
    assert resp.status == 403  # a cookie-authenticated write needs an allowed Origin
    resp = await chat.post(
        "/v1/conversations", json=body, headers={**cookie, "Origin": "http://localhost:8080"}
    )
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["data"]["customer_id"] == str(chat_world.customer.id)
