"""Token-bucket rate limits: in memory for one process, in Redis across replicas.

A bucket holds up to `burst` tokens and refills at `rate` tokens per second; a hit
takes one token or is refused with the seconds until one is back.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from lib.errors import RateLimited


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: float  # seconds until a hit would be allowed; 0 when allowed
    remaining: int  # whole tokens left after this hit


class RateLimiter(Protocol):
    async def hit(self, key: str) -> Decision: ...


def _check(rate: float, burst: int) -> None:
    if rate <= 0 or burst < 1:
        raise ValueError("rate must be > 0 and burst >= 1")


class MemoryRateLimiter:
    """Buckets in a dict, least recently hit first.

    A bucket that has refilled to full is the same as no bucket, so those are dropped
    from the front as they appear; past `max_keys` the oldest go even if not full (that
    key gets a fresh burst), so memory stays bounded whatever the number of keys.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        _check(rate, burst)
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def __len__(self) -> int:
        return len(self._buckets)

    async def hit(self, key: str) -> Decision:
        now = self._clock()
        tokens, at = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate)
        if tokens >= 1:
            tokens -= 1
            decision = Decision(True, 0.0, int(tokens))
        else:
            decision = Decision(False, (1 - tokens) / self.rate, 0)
        self._buckets[key] = (tokens, now)
        self._evict(now)
        return decision

    def _evict(self, now: float) -> None:
        while self._buckets:
            key, (tokens, at) = next(iter(self._buckets.items()))
            full = tokens + (now - at) * self.rate >= self.burst
            if not full and len(self._buckets) <= self.max_keys:
                return
            del self._buckets[key]


# KEYS[1] = bucket hash {tokens, ts(ms)}; ARGV = rate (tokens/s), burst.
# Server TIME, so every replica sees one clock; the hash expires once it would be full
# again (an absent bucket is a full one). Returns {allowed, retry_after_ms, remaining}.
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local allowed, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1)
return {allowed, wait, math.floor(tokens)}
"""


class RedisRateLimiter:
    """The same bucket kept in Redis under `prefix + key`, updated by one Lua script."""

    def __init__(self, redis: Redis, rate: float, burst: int, prefix: str) -> None:
        _check(rate, burst)
        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self._script = redis.register_script(_TOKEN_BUCKET)

    async def hit(self, key: str) -> Decision:
        allowed, wait_ms, remaining = await self._script(
            keys=[self.prefix + key], args=[repr(self.rate), self.burst]
        )
        return Decision(bool(allowed), int(wait_ms) / 1000, int(remaining))


def make_rate_limiter(rate: float, burst: int, redis: Redis | None, prefix: str) -> RateLimiter:
    """Redis when there is one (limits shared by replicas and workers), else memory."""
    if redis is not None:
        return RedisRateLimiter(redis, rate, burst, prefix)
    return MemoryRateLimiter(rate, burst)


async def enforce(limiter: RateLimiter, key: str) -> None:
    """Take a token for `key` or raise RateLimited (429 with Retry-After)."""
    decision = await limiter.hit(key)
    if not decision.allowed:
        raise RateLimited("rate limit exceeded", retry_after=decision.retry_after)
