"""Circuit breaker, retry and the in-memory rate limiter, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from lib.errors import CircuitOpen, NotFound
from lib.resilience.breaker import BreakerState, CircuitBreaker
from lib.resilience.ratelimit import MemoryRateLimiter
from lib.resilience.retry import retry


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Flaky:
    """An async callable that raises its `errors` in turn, then returns "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError):
            await breaker.call(Flaky(ConnectionError()))


# --- circuit breaker ---


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def changes() -> list[tuple[str, BreakerState]]:
    return []


@pytest.fixture
def breaker(clock: Clock, changes: list[tuple[str, BreakerState]]) -> CircuitBreaker:
    return CircuitBreaker(
        "points",
        failure_threshold=3,
        reset_timeout=30.0,
        clock=clock,
        on_state_change=lambda name, state: changes.append((name, state)),
    )


async def test_success_resets_the_consecutive_count(breaker: CircuitBreaker) -> None:
    await fail(breaker, 2)
    assert await breaker.call(Flaky()) == "ok"
    await fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED


async def test_open_breaker_fails_fast_without_calling(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    await fail(breaker, 3)
    clock.now += 10.5
    fn = Flaky()
    with pytest.raises(CircuitOpen) as info:
        await breaker.call(fn)
    assert fn.calls == 0
    assert info.value.retry_after == 20  # 19.5 s until half-open, rounded up
    assert info.value.headers == {"Retry-After": "20"}
    assert info.value.detail == "points is unavailable"
    entered = False
    with pytest.raises(CircuitOpen):
        async with breaker:
            entered = True
    assert not entered


async def test_half_open_failure_reopens(breaker: CircuitBreaker, clock: Clock) -> None:
    await fail(breaker, 3)
    clock.now += 30
    await fail(breaker)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen) as info:
        await breaker.call(Flaky())
    assert info.value.retry_after == 30  # a full reset_timeout again


async def test_cancellation_does_not_count(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(5):
        with pytest.raises(asyncio.CancelledError):
            await breaker.call(Flaky(asyncio.CancelledError()))
    assert breaker.state is BreakerState.CLOSED
    await fail(breaker, 3)
    clock.now += 30
    with pytest.raises(asyncio.CancelledError):
        await breaker.call(Flaky(asyncio.CancelledError()))
    assert breaker.state is BreakerState.HALF_OPEN  # the trial slot is free again
    assert await breaker.call(Flaky()) == "ok"


async def test_only_failure_exceptions_count(clock: Clock) -> None:
    breaker = CircuitBreaker(
        "users", failure_threshold=1, failure_exceptions=(ConnectionError,), clock=clock
    )
    with pytest.raises(NotFound):
        await breaker.call(Flaky(NotFound()))
    assert breaker.state is BreakerState.CLOSED
    await fail(breaker)
    assert breaker.is_open


async def test_state_change_hook_and_gauge_values(
    breaker: CircuitBreaker, clock: Clock, changes: list[tuple[str, BreakerState]]
) -> None:
    assert breaker.state_value() == 0
    await fail(breaker, 3)
    assert breaker.state_value() == 1
    clock.now += 30
    assert breaker.state_value() == 2
    assert await breaker.call(Flaky()) == "ok"
    assert breaker.state_value() == 0
    assert changes == [
        ("points", BreakerState.OPEN),
        ("points", BreakerState.HALF_OPEN),
        ("points", BreakerState.CLOSED),
    ]
    assert [str(state) for _, state in changes] == ["open", "half_open", "closed"]


async def test_breaker_passes_arguments() -> None:
    async def add(a: int, b: int = 0) -> int:
        return a + b

    assert await CircuitBreaker("calc").call(add, 2, b=3) == 5


# --- retry and timeout ---


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def test_retry_succeeds_after_two_failures_with_jittered_delays() -> None:
    fn = Flaky(ConnectionError(), ConnectionError())
    sleeps = Sleeps()
    rolls = iter([0.5, 0.25])
    result = await retry(fn, base_delay=0.1, max_delay=1.0, sleep=sleeps, rng=lambda: next(rolls))
    assert result == "ok"
    assert fn.calls == 3
    assert sleeps.delays == pytest.approx([0.5 * 0.1, 0.25 * 0.2])


@pytest.mark.parametrize(
    "error", [CircuitOpen("x", retry_after=5), asyncio.CancelledError(), KeyError("not retried")]
)
async def test_retry_does_not_retry(error: BaseException) -> None:
    fn = Flaky(error)
    sleeps = Sleeps()
    with pytest.raises(type(error)):
        await retry(fn, retry_on=(ConnectionError, CircuitOpen), sleep=sleeps)
    assert fn.calls == 1
    assert sleeps.delays == []


# --- in-memory rate limiter ---


async def test_memory_limiter_keys_are_independent(clock: Clock) -> None:
    limiter = MemoryRateLimiter(rate=1.0, burst=1, clock=clock)
    assert (await limiter.hit("a")).allowed
    assert not (await limiter.hit("a")).allowed
    assert (await limiter.hit("b")).allowed


async def test_memory_limiter_stays_bounded(clock: Clock) -> None:
    limiter = MemoryRateLimiter(rate=1.0, burst=5, clock=clock, max_keys=100)
    for i in range(1000):
        await limiter.hit(f"ip:{i}")
    assert len(limiter) == 100
    # the newest bucket was kept: 4 tokens left, not a fresh burst of 5
    assert [(await limiter.hit("ip:999")).allowed for _ in range(5)] == [True] * 4 + [False]
    clock.now += 10  # every bucket is full again, so they go as soon as anything is hit
    await limiter.hit("fresh")
    assert len(limiter) == 1
