"""The strict per-account login limit (ADR 0050) on a Redis that answers late: a Redis of
this test's own (tests/reliability/throwaway.py) whose writes are held back with
`CLIENT PAUSE ... WRITE` (the limit's Lua script counts as a write). Every attempt during
the pause answers within RATE_LIMIT_REDIS_TIMEOUT (and a loaded machine's margin) with a
503 before any hash, none hangs, and over the whole run no more attempts are verified than
the account's burst: the scripts Redis runs late, after the pause, spend the bucket, they
never refill it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.users.app import create_app
from tests.integration.smtp_support import smtp_sink
from tests.integration.users_support import mailing_settings
from tests.reliability.throwaway import RedisServer
from tools.time_scale import scaled

BURST = 3
REDIS_TIMEOUT = 0.5  # RATE_LIMIT_REDIS_TIMEOUT of the app under test
PARALLEL = 10


def verified_attempts() -> float:
    """users_logins_total{outcome=failed}: wrong passwords that reached the hash."""
    labels = {"service": "users", "outcome": "failed"}
    return REGISTRY.get_sample_value("users_logins_total", labels) or 0.0


async def test_a_slow_redis_refuses_fast_and_lets_no_extra_attempt_through(
    aiohttp_client: Any, migrated_db: Callable[[str], str], own_redis: RedisServer
) -> None:
    with smtp_sink() as sink:
        settings = mailing_settings(
            migrated_db("users"),
            sink.port,
            redis_url=own_redis.url,
            login_rate=0.001,  # no refill within the test
            login_burst=BURST,
            rate_limit_redis_timeout=REDIS_TIMEOUT,
            rate_limit_prefix=f"rl:{uuid.uuid4().hex}:",
        )
        client = await aiohttp_client(create_app(settings))
        admin = Redis.from_url(own_redis.url)
        body = {"email": f"slow{uuid.uuid4().hex[:8]}@fixup.test", "password": "wrong"}
        headers = iter(f"10.7.0.{n}" for n in range(1, 250))  # one address each: the
        # per-IP limit stays out of the way (its fallback is per process)

        async def attempt() -> tuple[int, float]:
            started = time.monotonic()
            resp = await client.post(
                "/v1/auth/login", json=body, headers={"X-Real-IP": next(headers)}
            )
            await resp.read()
            return resp.status, time.monotonic() - started

        try:
            before = verified_attempts()
            assert (await attempt())[0] == 401  # Redis well: one attempt verified
            await admin.execute_command("CLIENT", "PAUSE", int(scaled(60) * 1000), "WRITE")
            during = await asyncio.gather(*(attempt() for _ in range(PARALLEL)))
            await admin.execute_command("CLIENT", "UNPAUSE")
            after = [await attempt() for _ in range(BURST + 2)]
        finally:
            await admin.execute_command("CLIENT", "UNPAUSE")
            await admin.aclose()

    bound = REDIS_TIMEOUT + scaled(1.0)  # the configured timeout, and a loaded margin
    assert all(status == 503 for status, _ in during), during
    assert all(took < bound for _, took in during), (during, bound)
    statuses = [status for status, _ in after]
    assert set(statuses) <= {401, 429}, statuses
    assert 429 in statuses  # the budget ran out, as it must within BURST + 2
    verified = verified_attempts() - before
    assert verified == 1 + statuses.count(401)
    assert verified <= BURST  # the late scripts spent tokens; none was given twice
