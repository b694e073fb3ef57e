"""Token-bucket rate limits: in memory for one process, in Redis across replicas.

A bucket holds up to `burst` tokens and refills at `rate` tokens per second; a hit
takes one token or is refused with the seconds until one is back.

Every limit is applied the same way, by middleware and handlers alike: `enforce(limiter,
key)`. A limit kept in Redis is a `FallbackRateLimiter`: while Redis is unreachable (down,
or slower than the store's time-out) the process decides with its own bucket of the same
rate and burst, so a limit neither raises nor vanishes during an outage (ADR 0005).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lib.errors import CircuitOpen, RateLimited, ServiceUnavailable
from lib.logging import get_logger
from lib.resilience.breaker import BreakerState, CircuitBreaker

log = get_logger("lib.ratelimit")
FALLBACK_HITS = Counter(
    "ratelimit_fallback_total",
    "Rate-limit hits decided by the process's own bucket because Redis was unreachable.",
    ["service", "limit"],
)
# what "Redis did not decide" looks like: refused, reset, an error reply, or our time-out
STORE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


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


# KEYS = bucket hashes {tokens, ts(ms)}, one hit each, in order (a key may repeat);
# ARGV = rate (tokens/s), burst. Server TIME, so every replica sees one clock; a hash
# expires once it would be full again (an absent bucket is a full one). Returns
# {allowed, retry_after_ms, remaining} for each key, one after the other.
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, key in ipairs(KEYS) do
  local b = redis.call('HMGET', key, 'tokens', 'ts')
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
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', now)
  redis.call('PEXPIRE', key, math.ceil((burst - tokens) * 1000 / rate) + 1)
  out[#out + 1] = allowed
  out[#out + 1] = wait
  out[#out + 1] = math.floor(tokens)
end
return out
"""


class RedisRateLimiter:
    """The same bucket kept in Redis under `prefix + key`, updated by one Lua script.

    The hits asked for in one turn of the event loop go to Redis together, as one call of
    the script over their keys: under load a request pays a share of a round trip, not a
    round trip (the per-IP limit was a fifth of a worker's CPU, one call per request:
    docs/benchmarks.md). One call is bounded by `timeout` (a TimeoutError for each of its
    callers), and a caller that stops waiting leaves the others their answers. The keys of
    one call may live on one server only: this is Redis with Sentinel, not Redis Cluster
    (ADR 0033).
    """

    def __init__(self, redis: Redis, rate: float, burst: int, prefix: str, timeout: float) -> None:
        _check(rate, burst)
        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self.timeout = timeout
        self._script = redis.register_script(_TOKEN_BUCKET)
        self._waiting: list[tuple[str, asyncio.Future[Decision]]] = []
        self._asking: set[asyncio.Task[None]] = set()  # held until done (asyncio's advice)

    async def hit(self, key: str) -> Decision:
        answer: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._waiting.append((self.prefix + key, answer))
        if len(self._waiting) == 1:  # the first of this turn: the call starts on the next
            task = asyncio.create_task(self._ask())
            self._asking.add(task)
            task.add_done_callback(self._asking.discard)
        return await answer

    async def _ask(self) -> None:
        batch, self._waiting = self._waiting, []
        try:
            async with asyncio.timeout(self.timeout):
                reply = await self._script(
                    keys=[key for key, _ in batch], args=[repr(self.rate), self.burst]
                )
        except Exception as exc:  # each caller meets it as its own call's failure
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            return
        except asyncio.CancelledError:  # the loop is closing: so are its callers
            for _, answer in batch:
                answer.cancel()
            raise
        for at, (_, answer) in enumerate(batch):
            allowed, wait_ms, remaining = reply[3 * at : 3 * at + 3]
            if not answer.done():
                answer.set_result(Decision(bool(allowed), int(wait_ms) / 1000, int(remaining)))


class RateLimitStore:
    """Redis as the home of a process's limits, and whether it answers right now.

    Every limit made by `limiter()` shares one outage state: a circuit breaker that opens
    on the first failed call and then lets one call try Redis every `retry_after` seconds.
    So an outage costs one WARNING line per process, at most one slow call (`timeout`) per
    interval, and one INFO line once a try finds Redis back - whatever the number of
    limits and requests. Keys are `prefix + <limit name> + ":" + <key>`.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        service: str,
        timeout: float,
        retry_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.redis = redis
        self.prefix = prefix
        self.service = service
        self.timeout = timeout
        self.breaker = CircuitBreaker(
            "redis",
            failure_threshold=1,
            reset_timeout=retry_after,
            failure_exceptions=STORE_ERRORS,
            clock=clock,
        )
        self.unreachable = False  # between the warning and the recovery line

    def limiter(
        self, name: str, rate: float, burst: int, strict: bool = False
    ) -> FallbackRateLimiter:
        return FallbackRateLimiter(self, name, rate, burst, strict)

    async def decide(self, shared: RedisRateLimiter, key: str) -> Decision | None:
        """Redis' decision for `key`, or None when Redis did not give one in time."""
        try:
            async with self.breaker:  # the call is bounded by the store's timeout
                decision = await shared.hit(key)
        except CircuitOpen:  # known to be down: not tried before the next retry
            return None
        except STORE_ERRORS as exc:
            if not self.unreachable:
                self.unreachable = True
                log.warning(
                    "rate_limit_store_unreachable",
                    error=repr(exc),
                    fallback="per-process buckets",
                    retry_after=self.breaker.reset_timeout,
                )
            return None
        # a call begun before the outage may end after it began: only a try that closed
        # the breaker says Redis is back
        if self.unreachable and self.breaker.state is BreakerState.CLOSED:
            self.unreachable = False
            log.info("rate_limit_store_restored")
        return decision


class FallbackRateLimiter:
    """A limit kept in Redis (one bucket per key for every replica and worker), decided by
    this process's own bucket with the same rate and burst while Redis is unreachable:
    during an outage each process allows at most what the whole fleet allows normally.
    A `strict` limit has no fallback: when Redis gives no decision in time it refuses
    (503 with Retry-After), so its budget holds across the fleet whatever happens (the
    attempts on one account: ADR 0049)."""

    def __init__(
        self, store: RateLimitStore, name: str, rate: float, burst: int, strict: bool
    ) -> None:
        self.name = name
        self.strict = strict
        self.shared = RedisRateLimiter(
            store.redis, rate, burst, f"{store.prefix}{name}:", store.timeout
        )
        self.local = MemoryRateLimiter(rate, burst)
        self._store = store
        self._fallbacks = FALLBACK_HITS.labels(store.service, name)  # 0 from start-up

    async def hit(self, key: str) -> Decision:
        if self.strict:  # asked every time, past the breaker: a restarted Redis at once
            try:
                return await self.shared.hit(key)  # bounded by the store's timeout
            except STORE_ERRORS:
                retry = self._store.breaker.reset_timeout
                raise ServiceUnavailable(
                    f"the {self.name} limit cannot be checked", retry_after=retry
                ) from None
        decision = await self._store.decide(self.shared, key)
        if decision is None:
            self._fallbacks.inc()
            decision = await self.local.hit(key)
        return decision


def make_rate_limiter(
    name: str, rate: float, burst: int, store: RateLimitStore | None, strict: bool = False
) -> RateLimiter:
    """The limit `name`: in Redis with a per-process fallback (none when `strict`) when the
    process has a store (limits shared by replicas and workers), else in memory."""
    if store is not None:
        return store.limiter(name, rate, burst, strict)
    return MemoryRateLimiter(rate, burst)


@dataclass
class Limits:
    """The limits every request meets (lib.http.middleware); `store` (None without Redis)
    makes a service's own, which share its outage state."""

    ip: RateLimiter
    user: RateLimiter
    store: RateLimitStore | None = None


async def enforce(limiter: RateLimiter, key: str) -> None:
    """Take a token for `key` or raise RateLimited (429 with Retry-After): the one way a
    limit is applied, by the middleware and by handlers alike."""
    decision = await limiter.hit(key)
    if not decision.allowed:
        raise RateLimited("rate limit exceeded", retry_after=decision.retry_after)
