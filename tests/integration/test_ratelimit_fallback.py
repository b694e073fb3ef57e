"""A limit kept in Redis while that Redis goes away, hangs and comes back: a redis-server
of the test's own on a free port (the machine's shared one is never stopped).

Each limiter stands for one replica (its own client and store). The outage clock is the
store's own (injected), so "a retry interval later" needs no sleeping."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from lib.errors import RateLimited
from lib.resilience.ratelimit import (
    FallbackRateLimiter,
    RateLimitStore,
    enforce,
    make_rate_limiter,
)
from tests.logging_support import capture_logs
from tests.reliability.throwaway import RedisServer
from tools.time_scale import scaled

TIMEOUT = 1.0  # RATE_LIMIT_REDIS_TIMEOUT of these stores (a loaded machine is slow too)
RETRY = 1.0  # RATE_LIMIT_REDIS_RETRY, on the fake clock
LATE = scaled(30.0)  # how late a time-out may fire on a 2-core machine at load 3
SERVICE = "ratelimit-test"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Replica:
    """One process's view: its own client, store and limiter 'login' (rate ~0, burst 3)."""

    def __init__(self, url: str, prefix: str, clock: Clock) -> None:
        self.client = Redis.from_url(url)
        self.store = RateLimitStore(
            self.client,
            prefix=prefix,
            service=SERVICE,
            timeout=TIMEOUT,
            retry_after=RETRY,
            clock=clock,
        )
        limiter = make_rate_limiter("login", 0.001, 3, self.store)
        assert isinstance(limiter, FallbackRateLimiter)
        self.limiter = limiter

    async def allowed(self, key: str, hits: int = 1) -> list[bool]:
        return [(await self.limiter.hit(key)).allowed for _ in range(hits)]


@pytest.fixture
async def replicas(own_redis: RedisServer) -> AsyncIterator[tuple[Replica, Replica, Clock]]:
    clock = Clock()
    prefix = f"rl:{uuid.uuid4().hex}:"
    pair = Replica(own_redis.url, prefix, clock), Replica(own_redis.url, prefix, clock)
    yield pair[0], pair[1], clock
    for replica in pair:
        await replica.client.aclose()


def fallbacks(limit: str = "login") -> float:
    value = REGISTRY.get_sample_value(
        "ratelimit_fallback_total", {"service": SERVICE, "limit": limit}
    )
    assert value is not None, "the series exists from the limiter's creation"
    return value


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


async def in_redis(replica: Replica, key: str) -> bool:
    return bool(await replica.client.exists(f"{replica.limiter.shared.prefix}{key}"))


async def test_stopped_redis_each_replica_keeps_its_own_bucket_then_shares_again(
    own_redis: RedisServer, replicas: tuple[Replica, Replica, Clock]
) -> None:
    a, b, clock = replicas
    # shared: the burst of 3 is one budget for both replicas
    assert [*await a.allowed("email:1"), *await b.allowed("email:1")] == [True, True]
    assert [*await a.allowed("email:1"), *await b.allowed("email:1")] == [True, False]
    counted = fallbacks()

    await asyncio.to_thread(own_redis.stop)
    with capture_logs() as logs:
        # no 500, no free pass: each replica refuses past its own burst of 3
        assert await a.allowed("email:2", 5) == [True] * 3 + [False] * 2
        assert await b.allowed("email:2", 5) == [True] * 3 + [False] * 2
        with pytest.raises(RateLimited) as refused:
            await enforce(a.limiter, "email:2")
        assert int(refused.value.headers["Retry-After"]) > 100  # 1 token / 0.001 per s
        clock.now += RETRY * 3  # retries fail too: still the same outage
        assert await a.allowed("email:2") == [False]
    assert fallbacks() - counted == 12
    warnings = events(logs, "rate_limit_store_unreachable")
    assert len(warnings) == 2, logs  # one per replica (process), not one per request
    assert all(w["log_level"] == "warning" for w in warnings)
    assert "Connect" in warnings[0]["error"] or "111" in warnings[0]["error"], warnings[0]
    assert events(logs, "rate_limit_store_restored") == []

    await asyncio.to_thread(own_redis.start)  # same port, empty
    with capture_logs() as logs:
        assert await a.allowed("email:3") == [True]  # not retried yet: still its own bucket
        assert not await in_redis(a, "email:3")
        clock.now += RETRY  # the next hit tries Redis again, and finds it
        assert await a.allowed("email:4") == [True]
        assert await in_redis(a, "email:4")
        assert await b.allowed("email:4") == [True]
    restored = events(logs, "rate_limit_store_restored")
    assert [r["log_level"] for r in restored] == ["info", "info"], logs
    # shared again: one budget of 3 for both
    assert [*await a.allowed("email:5"), *await b.allowed("email:5")] == [True, True]
    assert [*await a.allowed("email:5"), *await b.allowed("email:5")] == [True, False]

    # a second outage is a second warning
    await asyncio.to_thread(own_redis.stop)
    with capture_logs() as logs:
        await a.allowed("email:6", 3)
    assert len(events(logs, "rate_limit_store_unreachable")) == 1


async def test_a_hung_redis_costs_one_timeout_per_retry_interval(
    own_redis: RedisServer, replicas: tuple[Replica, Replica, Clock]
) -> None:
    a, _, clock = replicas
    assert await a.allowed("warm") == [True]  # a pooled connection to the server exists
    assert own_redis.pid is not None
    os.kill(own_redis.pid, signal.SIGSTOP)  # accepts, never answers
    try:
        with capture_logs() as logs:
            started = time.monotonic()
            assert await a.allowed("email:h") == [True]  # after the time-out, not forever
            first = time.monotonic() - started
            started = time.monotonic()
            assert await a.allowed("email:h", 20) == [True, True] + [False] * 18
            rest = time.monotonic() - started
        assert TIMEOUT <= first < TIMEOUT + LATE, first
        assert rest < TIMEOUT, rest  # known to be down: none of these waited for Redis
        warnings = events(logs, "rate_limit_store_unreachable")
        assert len(warnings) == 1, logs
        assert "TimeoutError" in warnings[0]["error"], warnings
        clock.now += RETRY
        started = time.monotonic()
        assert await a.allowed("email:h") == [False]  # the retry waited, then memory again
        assert TIMEOUT <= time.monotonic() - started < TIMEOUT + LATE
    finally:
        os.kill(own_redis.pid, signal.SIGCONT)
    clock.now += RETRY
    with capture_logs() as logs:
        assert await a.allowed("email:after") == [True]
    assert await in_redis(a, "email:after")
    assert len(events(logs, "rate_limit_store_restored")) == 1
