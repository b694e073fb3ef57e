"""Every rate-limited route of every HTTP service, and chat's WebSocket send, while the
Redis holding their buckets is stopped (a redis-server of this test's own): each answers
as it is specified to (never a 500), still refuses past the limit in each process (a
login storm on one account gets 503: that limit has no per-process fallback), logs one
warning per process, counts the fallback, and shares the limits again once Redis is back
(issue 27, item 1)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from lib.auth.principal import Role
from lib.auth.revocation import HASH_NAME, MARKER
from lib.config import ServiceSettings
from services.catalog.app import create_app as catalog_app
from services.departments.app import create_app as departments_app
from services.orders.app import create_app as orders_app
from services.users.app import create_app as users_app
from tests.integration.auth_support import bearer, settings_for
from tests.integration.catalog_support import catalog_settings
from tests.integration.chat_support import ChatFactory, World, conversation, eventually, token_of
from tests.integration.orders_support import orders_settings
from tests.integration.users_support import users_settings
from tests.logging_support import capture_logs
from tests.reliability.throwaway import RedisServer
from tools.time_scale import scaled

BURST = 3  # every limit below: a burst of 3, refilling too slowly to matter here
SLOW = 0.001


# Token revocation fails closed (lib.auth.revocation): while Redis is down, a subject not
# in a process's cache gets 503 before any per-user limit. The signed-in callers below
# are cached before the outage, long enough to reach the per-user limit during it.
REVOCATION_CACHE = (
    {"revocation_cache_ttl": 60.0} if "revocation_cache_ttl" in ServiceSettings.model_fields else {}
)


def limits(url: str, **extra: Any) -> dict[str, Any]:
    """Tight per-IP and per-user limits in the test's Redis, under keys of this test."""
    return {
        **REVOCATION_CACHE,
        "redis_url": url,
        "rate_limit_prefix": f"rl:{uuid.uuid4().hex}:",
        "rate_limit_ip_rate": SLOW,
        "rate_limit_ip_burst": BURST,
        "rate_limit_user_rate": SLOW,
        "rate_limit_user_burst": BURST,
        "rate_limit_redis_retry": 0.2,
        # a stopped Redis refuses at once; a slow answer on a loaded machine must not
        # start the outage early (the time-out itself: test_ratelimit_fallback)
        "rate_limit_redis_timeout": 5.0,
        **extra,
    }


def fallbacks(service: str, limit: str) -> float:
    value = REGISTRY.get_sample_value(
        "ratelimit_fallback_total", {"service": service, "limit": limit}
    )
    assert value is not None, f"ratelimit_fallback_total{{{service},{limit}}} missing"
    return value


async def statuses(send: Callable[[], Any], times: int) -> list[int]:
    answers = []
    for _ in range(times):
        resp = await send()
        body = await resp.read()
        assert resp.status != 500, body
        if resp.status == 429:
            problem = orjson.loads(body)
            assert problem["code"] == "RATE_LIMIT_EXCEEDED", problem
            assert int(resp.headers["Retry-After"]) >= 1
        answers.append(resp.status)
    return answers


def unique_email() -> str:
    return f"u{uuid.uuid4().hex[:12]}@fixup.test"


def registration() -> dict[str, Any]:
    return {
        "email": unique_email(),
        "password": "correct horse",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone_number": "+44 20 7946 0000",
        "role": "CUSTOMER",
    }


async def test_every_limited_route_answers_during_a_redis_outage_and_shares_after(
    aiohttp_client: Any,
    migrated_db: Callable[[str], str],
    chat_factory: ChatFactory,
    chat_world: World,
    chat_catalog_dsn: str,
    chat_orders_dsn: str,
    own_redis: RedisServer,
) -> None:
    redis_server, world = own_redis, chat_world
    catalog_dsn, orders_dsn = chat_catalog_dsn, chat_orders_dsn
    url = redis_server.url
    departments = await aiohttp_client(
        departments_app(settings_for(migrated_db("departments"), **limits(url)))
    )
    catalog = await aiohttp_client(catalog_app(catalog_settings(catalog_dsn, **limits(url))))
    orders = await aiohttp_client(
        orders_app(orders_settings(orders_dsn, **limits(url, rate_limit_ip_burst=100)))
    )
    users_dsn = migrated_db("users")
    auth_limits = {
        "login_rate": SLOW,
        "login_burst": BURST,
        "mail_rate": SLOW,
        "mail_burst": BURST,
        "register_rate": SLOW,
    }
    users_config = limits(url, rate_limit_ip_burst=100, register_burst=2, **auth_limits)
    users = await aiohttp_client(users_app(users_settings(users_dsn, **users_config)))
    replica = await aiohttp_client(users_app(users_settings(users_dsn, **users_config)))
    # users' keeper marks the revocations hash whole once it is: until then every other
    # service's token check asks the record (503 here, none is reachable)
    marks = Redis.from_url(url)
    try:
        prefix = users_settings(users_dsn, **users_config).revocation_prefix
        marked = f"users' revocation marker in {prefix}{HASH_NAME}"
        await eventually(lambda: marks.hexists(f"{prefix}{HASH_NAME}", MARKER), marked)
    finally:
        await marks.aclose()
    # chat: the socket is opened while Redis is up (the room subscribes through it)
    chat = await chat_factory(**limits(url, rate_limit_ip_burst=100))
    conversation_id = await conversation(chat, world)
    socket = await chat.ws_connect(
        f"/v1/conversations/{conversation_id}/ws", protocols=("fixup.bearer", token_of(world.p1))
    )
    customer = bearer(Role.CUSTOMER)
    counted = {
        (s, limit): fallbacks(s, limit)
        for s, limit in [
            ("departments", "ip"),
            ("catalog", "ip"),
            ("orders", "user"),
            ("chat", "user"),
            ("users", "login"),
            ("users", "register"),
            ("users", "mail"),
        ]
    }
    for warm in (  # each signed-in caller's first request, with Redis up
        await orders.get("/v1/orders", headers=customer),
        await chat.get("/v1/conversations", headers=world.customer.headers),
    ):
        assert warm.status == 200, await warm.text()
    await asyncio.to_thread(redis_server.stop)

    with capture_logs() as logs:
        # the per-IP limit, in the middleware
        assert (
            await statuses(lambda: departments.get("/v1/departments"), 5) == [200] * 3 + [429] * 2
        )
        assert await statuses(lambda: catalog.get("/v1/openapi.json"), 5) == [200] * 3 + [429] * 2
        # the per-user limit, in the middleware
        assert (
            await statuses(lambda: orders.get("/v1/orders", headers=customer), 5)
            == [200] * 3 + [429] * 2
        )
        assert (
            await statuses(lambda: chat.get("/v1/conversations", headers=world.customer.headers), 5)
            == [200] * 3 + [429] * 2
        )
        # users' own limits, in the handlers
        assert await statuses(lambda: users.post("/v1/auth/register", json=registration()), 3) == [
            201,
            201,
            429,
        ]
        mail = unique_email()  # both mail routes share one limit per email (burst 3)
        resend = await statuses(
            lambda: users.post("/v1/auth/resend-verification", json={"email": mail}), 2
        )
        reset = await statuses(
            lambda: users.post("/v1/auth/password-reset", json={"email": mail}), 2
        )
        assert (resend, reset) == ([204, 204], [204, 429])
        # a login storm on one account: the per-account limit is strict (no bucket per
        # process, which would multiply the budget by the replicas), so no attempt reaches
        # a hash: 503 while the per-IP login limit lets it through, then that limit's 429,
        # in each replica (its own per-IP bucket)
        victim = unique_email()
        attempt = {"email": victim, "password": "guess"}
        for app in (users, replica):
            storm = await statuses(partial(app.post, "/v1/auth/login", json=attempt), 5)
            assert storm == [503] * BURST + [429] * 2, storm
        # chat's WebSocket send: the per-user limit, in the frame handler
        sent = []
        for n in range(BURST + 1):
            await socket.send_str(orjson.dumps({"type": "send", "body": f"m{n}"}).decode())
            sent.append(orjson.loads((await socket.receive(timeout=scaled(10))).data))
        assert [f["type"] for f in sent] == ["message"] * BURST + ["error"], sent
        assert sent[-1]["error"]["status"] == 429
    warnings = [e for e in logs if e["event"] == "rate_limit_store_unreachable"]
    assert len(warnings) == 6, [e["event"] for e in logs]  # one per app (process)
    assert all(e["log_level"] != "error" for e in logs), logs
    for (service, limit), before in counted.items():
        assert fallbacks(service, limit) > before, (service, limit)

    await asyncio.to_thread(redis_server.start)  # same port, empty
    check = Redis.from_url(url)
    try:
        # back in Redis once each replica's store has retried...
        login_prefix = f"{users_config['rate_limit_prefix']}users:login:"
        for app in (users, replica):
            probe = unique_email()

            async def back(app: Any = app, probe: str = probe) -> bool:
                await app.post("/v1/auth/login", json={"email": probe, "password": "x"})
                return bool(await check.exists(f"{login_prefix}email:{probe}"))

            await eventually(back, "users' limits back in Redis")
        # ...and one budget for both again: 3 mails per email, whichever replica is asked
        mail = unique_email()
        answers = [
            (await app.post("/v1/auth/password-reset", json={"email": mail})).status
            for app in [users, replica] * 3
        ]
        assert answers == [204] * 3 + [429] * 3, answers
    finally:
        await check.aclose()
        await socket.close()
