"""lib/resilience edges tests/unit/test_resilience.py leaves open: the breaker's defaults,
argument checks and messages, retry's exact backoff schedule and limits, the memory
limiter's exact tokens and waits (burst, refusal, refill) and its boundaries, and the Redis
limiter's Python side against a recording fake of the registered Lua script
(tests/integration runs the script itself)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest

from lib.errors import CircuitOpen, RateLimited
from lib.resilience import ratelimit as ratelimit_module
from lib.resilience.breaker import BreakerState, CircuitBreaker
from lib.resilience.ratelimit import (
    Decision,
    FallbackRateLimiter,
    MemoryRateLimiter,
    RateLimitStore,
    RedisRateLimiter,
    enforce,
    make_rate_limiter,
)
from lib.resilience.retry import retry
from tests.unit.test_resilience import Clock


async def boom() -> None:
    raise ConnectionError("down")


async def ok() -> str:
    return "ok"


async def tripped(clock: Clock, **settings: Any) -> CircuitBreaker:
    """Breaker "p" (one failure opens it, 1 s to half-open unless `settings` say otherwise),
    opened by a failure at clock.now."""
    breaker = CircuitBreaker(
        "p", clock=clock, **{"failure_threshold": 1, "reset_timeout": 1.0, **settings}
    )
    with pytest.raises(ConnectionError):
        await breaker.call(boom)
    return breaker


# --- breaker -------------------------------------------------------------------------------


def test_breaker_defaults() -> None:
    breaker = CircuitBreaker("x")
    assert breaker.name == "x"
    assert breaker.failure_threshold == 5
    assert breaker.reset_timeout == 30.0
    assert breaker.half_open_max_calls == 1
    assert breaker.failure_exceptions == (Exception,)
    assert breaker.on_state_change is None
    assert breaker._clock is time.monotonic
    assert breaker.state is BreakerState.CLOSED
    assert breaker.state_value() == 0
    assert breaker.is_open is False


@pytest.mark.parametrize(
    "kwargs",
    [{"failure_threshold": 0}, {"half_open_max_calls": 0}, {"reset_timeout": -0.001}],
)
def test_breaker_refuses_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"^thresholds must be >= 1 and reset_timeout >= 0$"):
        CircuitBreaker("x", **kwargs)


def test_breaker_accepts_the_smallest_settings() -> None:
    breaker = CircuitBreaker("x", failure_threshold=1, half_open_max_calls=1, reset_timeout=0)
    assert (breaker.failure_threshold, breaker.reset_timeout) == (1, 0)


async def test_default_threshold_is_five_consecutive_failures() -> None:
    breaker = CircuitBreaker("x", clock=Clock())
    for _ in range(4):
        with pytest.raises(ConnectionError):
            await breaker.call(boom)
    assert breaker.state is BreakerState.CLOSED
    with pytest.raises(ConnectionError):
        await breaker.call(boom)
    assert breaker.state is BreakerState.OPEN
    assert breaker.is_open


async def test_half_open_exactly_at_the_reset_timeout() -> None:
    clock = Clock()
    changes: list[tuple[str, BreakerState]] = []
    breaker = await tripped(
        clock, reset_timeout=30.0, on_state_change=lambda n, s: changes.append((n, s))
    )
    clock.now += 29.999
    assert breaker.state is BreakerState.OPEN
    clock.now += 0.001
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.state_value() == 2
    assert breaker.is_open is False
    assert changes == [("p", BreakerState.OPEN), ("p", BreakerState.HALF_OPEN)]


async def test_half_open_refusal_while_the_trial_runs_says_retry_in_1s() -> None:
    clock = Clock()
    breaker = await tripped(clock)
    clock.now += 1
    started, release = asyncio.Event(), asyncio.Event()

    async def trial() -> str:
        started.set()
        await release.wait()
        return "ok"

    running = asyncio.ensure_future(breaker.call(trial))
    await started.wait()
    fn = failing(0)
    with pytest.raises(CircuitOpen) as caught:
        await breaker.call(fn)
    assert fn.calls["n"] == 0  # refused without being called
    assert caught.value.detail == "p is unavailable"
    assert caught.value.retry_after == 1
    release.set()
    assert await running == "ok"
    assert breaker.state is BreakerState.CLOSED


async def test_two_trial_calls_when_allowed() -> None:
    clock = Clock()
    breaker = await tripped(clock, half_open_max_calls=2)
    clock.now += 1
    release = asyncio.Event()

    async def trial() -> str:
        await release.wait()
        return "ok"

    first = asyncio.ensure_future(breaker.call(trial))
    second = asyncio.ensure_future(breaker.call(trial))
    await asyncio.sleep(0)
    assert breaker._trials == 2
    with pytest.raises(CircuitOpen):
        await breaker.call(ok)
    second.cancel()  # one trial cancelled frees exactly its own slot
    with pytest.raises(asyncio.CancelledError):
        await second
    assert breaker._trials == 1
    release.set()
    assert await first == "ok"


async def test_a_cancelled_trial_frees_its_slot_but_never_below_zero() -> None:
    clock = Clock()
    breaker = await tripped(clock)
    clock.now += 1
    assert breaker.state is BreakerState.HALF_OPEN
    await breaker.__aexit__(asyncio.CancelledError, asyncio.CancelledError(), None)
    assert breaker._trials == 0
    await breaker.__aenter__()
    assert breaker._trials == 1
    await breaker.__aexit__(asyncio.CancelledError, asyncio.CancelledError(), None)
    assert breaker._trials == 0
    assert breaker.state is BreakerState.HALF_OPEN


async def test_a_cancellation_while_closed_changes_nothing() -> None:
    breaker = CircuitBreaker("p", failure_threshold=2, clock=Clock())
    with pytest.raises(ConnectionError):
        await breaker.call(boom)
    await breaker.__aexit__(asyncio.CancelledError, asyncio.CancelledError(), None)
    assert breaker._failures == 1
    assert breaker._trials == 0


async def test_a_late_success_while_open_keeps_it_open() -> None:
    breaker = await tripped(Clock(), reset_timeout=30.0)
    await breaker.__aexit__(None, None, None)  # a call that started before it opened
    assert breaker.state is BreakerState.OPEN
    await breaker.__aexit__(ConnectionError, ConnectionError(), None)  # a late failure
    assert breaker._opened_at == 1000.0  # not re-opened later
    assert breaker.state is BreakerState.OPEN


async def test_reopening_resets_the_counters() -> None:
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=2, reset_timeout=1.0, clock=clock)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breaker.call(boom)
    assert breaker._failures == 0
    clock.now += 1
    with pytest.raises(ConnectionError):
        await breaker.call(boom)  # the trial fails: open again, from now
    assert breaker._opened_at == 1001.0
    assert breaker._trials == 0
    clock.now += 1
    assert await breaker.call(ok) == "ok"
    assert breaker._failures == 0
    with pytest.raises(ConnectionError):
        await breaker.call(boom)
    assert breaker.state is BreakerState.CLOSED  # one failure of two


def test_setting_the_same_state_does_not_notify() -> None:
    changes: list[tuple[str, BreakerState]] = []
    breaker = CircuitBreaker("p", on_state_change=lambda n, s: changes.append((n, s)))
    breaker._failures, breaker._trials = 3, 1
    breaker._set(BreakerState.CLOSED)
    assert changes == []
    assert (breaker._failures, breaker._trials) == (0, 0)


# --- retry ---------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def failing(times: int, error: BaseException | None = None) -> Any:
    calls = {"n": 0}

    async def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error or ConnectionError(f"failure {calls['n']}")
        return "ok"

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


async def test_retry_defaults_three_attempts_doubling_from_50ms() -> None:
    rec = Recorder()
    fn = failing(5)
    with pytest.raises(ConnectionError, match="failure 3"):  # the last error, re-raised
        await retry(fn, sleep=rec.sleep, rng=lambda: 1.0)
    assert fn.calls["n"] == 3
    assert rec.sleeps == [0.05, 0.1]


async def test_retry_caps_each_delay_at_1s_by_default() -> None:
    rec = Recorder()
    await retry(failing(2), base_delay=5.0, sleep=rec.sleep, rng=lambda: 1.0)
    assert rec.sleeps == [1.0, 1.0]


async def test_retry_backoff_is_capped_and_jittered() -> None:
    rec = Recorder()
    fn = failing(6)
    got = await retry(
        fn, attempts=7, base_delay=0.25, max_delay=1.0, sleep=rec.sleep, rng=lambda: 0.5
    )
    assert got == "ok"
    assert fn.calls["n"] == 7
    assert rec.sleeps == [0.125, 0.25, 0.5, 0.5, 0.5, 0.5]


async def test_retry_jitters_with_random_by_default() -> None:
    rec = Recorder()
    for _ in range(20):
        assert await retry(failing(1), sleep=rec.sleep, base_delay=1.0) == "ok"
    assert all(0.0 <= s < 1.0 for s in rec.sleeps)
    assert len(set(rec.sleeps)) > 1  # jittered, not a fixed delay


async def test_one_attempt_never_sleeps() -> None:
    rec = Recorder()
    with pytest.raises(ConnectionError):
        await retry(failing(1), attempts=1, sleep=rec.sleep)
    assert rec.sleeps == []


@pytest.mark.parametrize("attempts", [0, -1])
async def test_retry_needs_an_attempt(attempts: int) -> None:
    with pytest.raises(ValueError, match=r"^attempts must be >= 1$"):
        await retry(failing(0), attempts=attempts)


# --- memory limiter ------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1.0, 1), (1.0, 0)])
def test_limiter_settings_are_checked(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match=r"^rate must be > 0 and burst >= 1$"):
        MemoryRateLimiter(rate, burst)
    with pytest.raises(ValueError, match=r"^rate must be > 0 and burst >= 1$"):
        RedisRateLimiter(cast(Any, FakeRedis()), rate, burst, "rl:", 1.0)


def test_memory_limiter_defaults_and_max_keys() -> None:
    limiter = MemoryRateLimiter(0.5, 1)
    assert (limiter.rate, limiter.burst, limiter.max_keys) == (0.5, 1, 100_000)
    assert limiter._clock is time.monotonic
    assert MemoryRateLimiter(1.0, 1, max_keys=1).max_keys == 1
    with pytest.raises(ValueError, match=r"^max_keys must be >= 1$"):
        MemoryRateLimiter(1.0, 1, max_keys=0)


async def test_memory_limiter_exact_tokens_and_waits() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(rate=2.0, burst=3, clock=clock)
    assert await limiter.hit("k") == Decision(True, 0.0, 2)
    assert await limiter.hit("k") == Decision(True, 0.0, 1)
    assert await limiter.hit("k") == Decision(True, 0.0, 0)
    assert await limiter.hit("k") == Decision(False, 0.5, 0)
    clock.now += 0.25  # half a token back
    assert await limiter.hit("k") == Decision(False, 0.25, 0)
    clock.now += 0.25  # exactly one token
    assert await limiter.hit("k") == Decision(True, 0.0, 0)
    clock.now += 100  # refills to burst, never past it
    assert await limiter.hit("k") == Decision(True, 0.0, 2)
    assert [(await limiter.hit("k")).allowed for _ in range(3)] == [True, True, False]


async def test_a_clock_going_back_refills_nothing() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(rate=1.0, burst=1, clock=clock)
    assert (await limiter.hit("k")).allowed
    clock.now -= 50
    assert await limiter.hit("k") == Decision(False, 1.0, 0)


async def test_only_full_buckets_or_overflow_are_evicted() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(rate=2.0, burst=2, clock=clock, max_keys=3)
    await limiter.hit("a")
    clock.now += 0.25
    await limiter.hit("b")
    assert list(limiter._buckets) == ["a", "b"]
    clock.now += 0.25  # a is full again exactly now (2 tokens/s), b is not
    await limiter.hit("c")
    assert list(limiter._buckets) == ["b", "c"]
    await limiter.hit("d")
    await limiter.hit("e")  # past max_keys: the oldest goes though not full
    assert list(limiter._buckets) == ["c", "d", "e"]


# --- redis limiter (the Python side) -------------------------------------------------------


class FakeScript:
    def __init__(self, answer: list[int]) -> None:
        self.answer = answer
        self.calls: list[tuple[list[str], list[Any]]] = []

    async def __call__(self, *, keys: list[str], args: list[Any]) -> list[int]:
        self.calls.append((keys, args))
        return self.answer


class FakeRedis:
    def __init__(self, answer: list[int] | None = None) -> None:
        self.script = FakeScript(answer or [1, 0, 4])
        self.registered: list[str] = []

    def register_script(self, source: str) -> FakeScript:
        self.registered.append(source)
        return self.script


async def test_redis_limiter_calls_the_script_with_prefixed_key_rate_and_burst() -> None:
    redis = FakeRedis([1, 0, 4])
    limiter = RedisRateLimiter(cast(Any, redis), 2.5, 5, "fixup:rl:", 1.0)
    assert (limiter.rate, limiter.burst, limiter.prefix) == (2.5, 5, "fixup:rl:")
    assert redis.registered == [ratelimit_module._TOKEN_BUCKET]
    assert await limiter.hit("ip:1") == Decision(True, 0.0, 4)
    assert redis.script.calls == [(["fixup:rl:ip:1"], ["2.5", 5])]


async def test_redis_limiter_refusal_converts_milliseconds() -> None:
    redis = FakeRedis([0, 1500, 0])
    limiter = RedisRateLimiter(cast(Any, redis), 1.0, 1, "p:", 1.0)
    decision = await limiter.hit("k")
    assert decision == Decision(False, 1.5, 0)
    assert type(decision.allowed) is bool
    assert type(decision.remaining) is int


def test_make_rate_limiter_with_redis_is_redis_with_a_memory_fallback() -> None:
    redis = FakeRedis()
    store = RateLimitStore(
        cast(Any, redis), prefix="rl:svc:", service="svc", timeout=0.1, retry_after=1.0
    )
    limiter = make_rate_limiter("login", 3.0, 7, store)
    assert isinstance(limiter, FallbackRateLimiter)
    shared, local = limiter.shared, limiter.local
    assert (shared.rate, shared.burst, shared.prefix) == (3.0, 7, "rl:svc:login:")
    assert (local.rate, local.burst) == (3.0, 7)  # the same settings during an outage
    assert limiter.strict is False  # an outage falls back to the process's bucket
    strict = make_rate_limiter("attempts", 3.0, 7, store, strict=True)
    assert isinstance(strict, FallbackRateLimiter)
    assert strict.strict is True  # no fallback: a 503 when Redis cannot decide
    memory = make_rate_limiter("login", 3.0, 7, None)
    assert isinstance(memory, MemoryRateLimiter)
    assert (memory.rate, memory.burst) == (3.0, 7)


async def test_enforce_passes_and_refuses_with_the_limiters_wait() -> None:
    allowed = FakeRedis([1, 0, 0])
    await enforce(RedisRateLimiter(cast(Any, allowed), 1.0, 1, "p:", 1.0), "k")
    refused = FakeRedis([0, 2500, 0])
    with pytest.raises(RateLimited) as caught:
        await enforce(RedisRateLimiter(cast(Any, refused), 1.0, 1, "p:", 1.0), "k")
    assert caught.value.detail == "rate limit exceeded"
    assert caught.value.retry_after == 3  # whole seconds, rounded up
    assert caught.value.headers == {"Retry-After": "3"}
    assert refused.script.calls == [(["p:k"], ["1.0", 1])]
