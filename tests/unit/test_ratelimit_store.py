"""lib/resilience/ratelimit's RateLimitStore and FallbackRateLimiter without a server:
Redis decides while it answers; a refused, failing or slow call falls back to the process's
own bucket of the same rate and burst (counted per service and limit); the shared breaker
asks Redis again once per interval; one WARNING per outage and one INFO once Redis is
back. Redis is a fake of the registered Lua script (tests/integration/test_ratelimit_*.py
run the real script, the real outage and the real recovery)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError

from lib.errors import RateLimited, ServiceUnavailable
from lib.resilience import ratelimit as ratelimit_module
from lib.resilience.breaker import BreakerState
from lib.resilience.ratelimit import Decision, RateLimitStore, enforce
from tests.logging_support import capture_logs
from tests.unit.test_resilience import Clock


class Script:
    """The registered token-bucket script: answers `answer`, or fails, or hangs."""

    def __init__(self) -> None:
        self.answer = [1, 0, 9]
        self.failure: BaseException | None = None
        self.hang = False
        self.keys: list[str] = []
        self.asked = asyncio.Event()

    async def __call__(self, *, keys: list[str], args: list[Any]) -> list[int]:
        self.keys.extend(keys)
        self.asked.set()
        if self.failure is not None:
            raise self.failure
        if self.hang:
            await asyncio.Event().wait()
        return self.answer


class FakeRedis:
    def __init__(self) -> None:
        self.script = Script()

    def register_script(self, source: str) -> Script:
        return self.script


def make(timeout: float = 1.0) -> tuple[RateLimitStore, Script, Clock, str]:
    redis, clock = FakeRedis(), Clock()
    service = f"svc-{uuid.uuid4().hex[:8]}"  # its own fallback counter
    store = RateLimitStore(
        cast(Any, redis),
        prefix="fixup:rl:",
        service=service,
        timeout=timeout,
        retry_after=5.0,
        clock=clock,
    )
    return store, redis.script, clock, service


def fallbacks(service: str, limit: str) -> float | None:
    return REGISTRY.get_sample_value(
        "ratelimit_fallback_total", {"service": service, "limit": limit}
    )


def test_the_store_keeps_its_settings_and_refuses_a_timeout_of_0() -> None:
    store, _, _, service = make(timeout=0.25)
    assert (store.prefix, store.service, store.timeout) == ("fixup:rl:", service, 0.25)
    assert store.breaker.reset_timeout == 5.0
    assert store.breaker.failure_threshold == 1
    assert store.unreachable is False
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"^timeout must be > 0$"):
            RateLimitStore(
                cast(Any, FakeRedis()), prefix="p", service="s", timeout=bad, retry_after=1.0
            )
    RateLimitStore(cast(Any, FakeRedis()), prefix="p", service="s", timeout=1e-9, retry_after=1)


async def test_redis_decides_under_the_store_prefix_and_the_limit_name() -> None:
    store, script, _, service = make()
    limiter = store.limiter("login", 1.0, 2)
    assert limiter.name == "login"
    assert fallbacks(service, "login") == 0.0  # the series exists from start-up
    script.answer = [0, 1500, 0]
    assert await limiter.hit("ip:1") == Decision(False, 1.5, 0)
    assert script.keys == ["fixup:rl:login:ip:1"]
    assert fallbacks(service, "login") == 0.0
    with pytest.raises(RateLimited):
        await enforce(limiter, "ip:1")


async def test_an_outage_falls_back_to_the_local_bucket_and_counts_it() -> None:
    store, script, _, service = make()
    limiter = store.limiter("login", 1.0, 2)
    script.failure = RedisConnectionError("refused")
    script.answer = [0, 9000, 0]  # what Redis would say: never used during the outage
    with capture_logs() as logs:
        first = await limiter.hit("ip:1")
        second = await limiter.hit("ip:1")
        third = await limiter.hit("ip:1")
    assert (first, second) == (Decision(True, 0.0, 1), Decision(True, 0.0, 0))
    # the local bucket, with the same rate and burst (on the real clock)
    assert (third.allowed, third.remaining) == (False, 0)
    assert 0.9 < third.retry_after <= 1.0
    assert fallbacks(service, "login") == 3.0
    assert len(script.keys) == 1  # the breaker opened on the first failure
    assert store.unreachable is True
    assert logs == [
        {
            "event": "rate_limit_store_unreachable",
            "error": repr(script.failure),
            "fallback": "per-process buckets",
            "retry_after": 5.0,
            "log_level": "warning",
        }
    ]
    # each key has its own local bucket
    assert await limiter.hit("ip:2") == Decision(True, 0.0, 1)
    assert fallbacks(service, "login") == 4.0
    other = store.limiter("signup", 1.0, 2)  # every limit of the store shares the outage
    assert await other.hit("ip:1") == Decision(True, 0.0, 1)
    assert len(script.keys) == 1
    assert fallbacks(service, "signup") == 1.0


async def test_one_try_per_interval_and_one_line_when_redis_is_back() -> None:
    store, script, clock, _ = make()
    limiter = store.limiter("login", 1.0, 5)
    script.failure = RedisConnectionError("refused")
    with capture_logs() as logs:
        await limiter.hit("k")
        clock.now += 5.0  # one try, which fails again: no second warning
        await limiter.hit("k")
        assert len(script.keys) == 2
        assert store.unreachable is True
        script.failure = None
        await limiter.hit("k")  # the breaker is open again: not tried
        assert len(script.keys) == 2
        clock.now += 5.0
        assert await limiter.hit("k") == Decision(True, 0.0, 9)  # Redis' answer again
        assert await limiter.hit("k") == Decision(True, 0.0, 9)
    assert [log["event"] for log in logs] == [
        "rate_limit_store_unreachable",
        "rate_limit_store_restored",
    ]
    assert logs[1] == {"event": "rate_limit_store_restored", "log_level": "info"}
    assert store.unreachable is False
    assert store.breaker.state is BreakerState.CLOSED


async def test_a_call_that_succeeds_while_the_breaker_is_open_does_not_say_restored() -> None:
    store, script, _, _ = make()
    limiter = store.limiter("login", 1.0, 5)
    script.hang = True
    slow = asyncio.create_task(limiter.hit("a"))  # begun before the outage
    await script.asked.wait()
    assert script.keys == ["fixup:rl:login:a"]  # in flight
    script.failure = RedisConnectionError("refused")
    await limiter.hit("b")  # the outage: the breaker opens
    script.failure, script.hang = None, False
    with capture_logs() as logs:
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
    assert logs == []
    assert store.unreachable is True


async def test_a_slow_redis_is_an_outage_after_the_timeout() -> None:
    store, script, _, service = make(timeout=0.01)
    limiter = store.limiter("login", 1.0, 2)
    script.hang = True
    with capture_logs() as logs:
        decision = await asyncio.wait_for(limiter.hit("k"), 5.0)
    assert decision == Decision(True, 0.0, 1)
    assert fallbacks(service, "login") == 1.0
    assert logs[0]["event"] == "rate_limit_store_unreachable"
    assert logs[0]["error"] == "TimeoutError()"


async def test_an_error_reply_is_an_outage_but_a_bug_is_not() -> None:
    store, script, _, _ = make()
    limiter = store.limiter("login", 1.0, 2)
    script.failure = OSError("reset")
    assert (await limiter.hit("k")).allowed
    assert store.unreachable is True
    store, script, _, _ = make()
    limiter = store.limiter("login", 1.0, 2)
    script.failure = KeyError("bug")
    with pytest.raises(KeyError):
        await limiter.hit("k")
    assert store.unreachable is False
    script.failure = None
    assert await limiter.hit("k") == Decision(True, 0.0, 9)  # Redis asked: no breaker open
    assert len(script.keys) == 2
    assert ratelimit_module.STORE_ERRORS[1:] == (OSError, TimeoutError)


async def test_a_strict_limit_refuses_with_503_when_redis_cannot_decide() -> None:
    store, script, _, service = make(timeout=0.01)
    limiter = store.limiter("attempts", 1.0, 2, strict=True)
    for failure in (RedisConnectionError("refused"), None):  # refused, then hung past 0.01 s
        script.failure, script.hang = failure, failure is None
        with pytest.raises(ServiceUnavailable) as refused:
            await asyncio.wait_for(limiter.hit("k"), 5.0)
        assert refused.value.detail == "the attempts limit cannot be checked"
        assert refused.value.retry_after == store.breaker.reset_timeout == 5.0
    assert fallbacks(service, "attempts") == 0.0  # no bucket of its own decided instead
    script.failure, script.hang = None, False
    assert await limiter.hit("k") == Decision(True, 0.0, 9)  # asked past the breaker: at once
