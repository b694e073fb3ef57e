"""The Redis token bucket against a real Redis: the memory limiter's behaviour, shared."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from lib.resilience.ratelimit import RedisRateLimiter
from tests.servers import Servers

TIMEOUT = 5.0  # a call's bound: never reached by a live Redis, only by a hung one


@pytest.fixture
async def redis(servers: Servers, redis_prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(servers.redis_url)
    yield client
    async for key in client.scan_iter(match=f"{redis_prefix}rl:*"):
        await client.delete(key)
    await client.aclose()


@pytest.fixture
def prefix(redis_prefix: str, request: pytest.FixtureRequest) -> str:
    return f"{redis_prefix}rl:{request.node.name}:"


async def test_burst_then_refusal(redis: Redis, prefix: str) -> None:
    limiter = RedisRateLimiter(redis, rate=2.0, burst=3, prefix=prefix, timeout=TIMEOUT)
    decisions = [await limiter.hit("ip:1") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[0].retry_after == 0
    assert 0.45 <= decisions[-1].retry_after <= 0.5  # ≈ 1/rate, less what refilled


async def server_ms(redis: Redis) -> int:
    """Redis' own clock in ms: the script refills by it, so the bounds below use it too."""
    seconds, micros = await redis.time()
    return seconds * 1000 + micros // 1000


async def test_refills_at_the_configured_rate(redis: Redis, prefix: str) -> None:
    rate, burst = 10.0, 20  # a drained key lives burst / rate = 2 s, past the wait below
    limiter = RedisRateLimiter(redis, rate=rate, burst=burst, prefix=prefix, timeout=TIMEOUT)
    # drain, what refills meanwhile too: a loaded machine can let a token's 100 ms pass
    # between two hits, so the refusal measured is the first one met, with its own bounds
    refused = None
    while refused is None or refused.allowed:
        before = await server_ms(redis)
        refused = await limiter.hit("k")
        after = await server_ms(redis)
    # what was left at the refusal, from the wait it announced (ceil((1 - tokens) / rate))
    left_high = 1 - (refused.retry_after * 1000 - 1) * rate / 1000
    left_low = 1 - refused.retry_after * rate
    await asyncio.sleep(0.5)  # the time being measured; nothing is waited for
    sent = await server_ms(redis)
    later = await limiter.hit("k")
    answered = await server_ms(redis)
    # the script saw between (sent - after) and (answered - before) ms go by
    low = math.floor(left_low + (sent - after) * rate / 1000) - 1
    high = math.floor(left_high + (answered - before) * rate / 1000) - 1
    assert later.allowed
    assert low <= later.remaining <= min(high, burst - 1), (low, later.remaining, high)
    assert later.remaining >= 3  # ~5 tokens back after 0.5 s at 10/s


async def test_keys_are_independent(redis: Redis, prefix: str) -> None:
    limiter = RedisRateLimiter(redis, rate=0.01, burst=1, prefix=prefix, timeout=TIMEOUT)
    assert (await limiter.hit("a")).allowed
    assert not (await limiter.hit("a")).allowed
    assert (await limiter.hit("b")).allowed


async def test_replicas_share_the_budget(servers: Servers, redis: Redis, prefix: str) -> None:
    other = Redis.from_url(servers.redis_url)  # a second process's own client
    try:
        replicas = [
            RedisRateLimiter(redis, rate=0.01, burst=3, prefix=prefix, timeout=TIMEOUT),
            RedisRateLimiter(other, rate=0.01, burst=3, prefix=prefix, timeout=TIMEOUT),
        ]
        allowed = [(await replicas[i % 2].hit("user:1")).allowed for i in range(6)]
    finally:
        await other.aclose()
    assert allowed == [True] * 3 + [False] * 3


async def test_idle_keys_expire(redis: Redis, prefix: str) -> None:
    limiter = RedisRateLimiter(redis, rate=10.0, burst=5, prefix=prefix, timeout=TIMEOUT)
    for _ in range(3):
        await limiter.hit("ip:9")
    ttl = await redis.pttl(f"{prefix}ip:9")
    assert 0 < ttl <= 301  # (5 - 2 tokens) / 10 per s = 300 ms until full again


async def test_hits_of_one_turn_go_together_and_each_is_counted(redis: Redis, prefix: str) -> None:
    # eight callers at once on a burst of 5 (one call of the script, keys in order): five
    # tokens are taken one after the other, the rest refused; another key is its own bucket
    limiter = RedisRateLimiter(redis, rate=0.01, burst=5, prefix=prefix, timeout=TIMEOUT)
    decisions = await asyncio.gather(*(limiter.hit("ip:1") for _ in range(8)), limiter.hit("ip:2"))
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3 + [True]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0, 0, 4]
    assert all(d.retry_after > 0 for d in decisions[5:8])
    stamps = {await redis.hget(f"{prefix}ip:{n}", "ts") for n in (1, 2)}
    assert len(stamps) == 1  # one script call: one reading of the server's clock
    assert not limiter._asking  # the call, held while in flight, let go once answered


async def test_a_caller_that_stops_waiting_leaves_the_others_their_answers(
    redis: Redis, prefix: str
) -> None:
    limiter = RedisRateLimiter(redis, rate=0.01, burst=3, prefix=prefix, timeout=TIMEOUT)
    gone = asyncio.ensure_future(limiter.hit("k"))
    kept = asyncio.ensure_future(limiter.hit("k"))
    await asyncio.sleep(0)  # both have asked; the call has not been answered yet
    gone.cancel()
    assert (await kept).allowed
    assert gone.cancelled()
    # the cancelled caller's hit was still taken: the bucket had 3, now 1 is left
    assert (await limiter.hit("k")).remaining == 0
