"""Token revocation (ADR 0010): "the tokens of subject S issued before T are void".

The record is the users database (table token_revocations): the users service writes T
with PostgreSQL's clock in the transaction that ends the sessions (an account deleted, a
password changed or reset) and passes it to `revoke`, which copies it to Redis, the fast
path: the key `<REVOCATION_PREFIX><user id>` holds T (Unix milliseconds) and expires after
the longest access-token lifetime. Every service checks each token it accepts against it
(`check`, called by the auth middleware and the chat WebSocket), with a short cache per
subject (REVOCATION_CACHE_TTL, 1 s). Tokens carry `iat` in milliseconds read from the same
clock (lib.auth.tokens), T is rounded up to the millisecond: every token signed before the
revocation is void, one signed after it is not, whatever the hosts' clocks say.

Redis unreachable (REVOCATION_TIMEOUT per read, then a breaker answers at once for
REVOCATION_RETRY seconds): the process asks the record instead, through `fallback` (other
services: users' GET /v1/auth/revocation with the token being checked, through a breaker
with a short timeout, lib/http/revocation_record.py; users: its own database), and caches the answer
as long as a Redis one. Only with both away does a subject this process never read get 503
(Retry-After); one it did read keeps the value it last read (stale if error). Writing the
Redis copy is not skipped: a revocation Redis does not take is an error the writer must not
swallow (`RevocationUnavailable`: users rolls its change back), or a process reading Redis
would miss it. Without REDIS_URL (one process, development) the copy lives in memory.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from lib.auth.principal import Principal
from lib.errors import CircuitOpen, ServiceUnavailable, Unauthorized
from lib.logging import get_logger
from lib.resilience.breaker import CircuitBreaker

log = get_logger("lib.auth")
CACHE_SIZE = 100_000  # subjects remembered per process (the table starts over when full)
FAILURES = (RedisError, OSError, TimeoutError)
CLOCK_MARGIN = 60  # s a record outlives the token lifetime: hosts' clocks differ a little
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)

# the record's not-before (ms, 0: none) of a subject, asked with the token being checked
Fallback = Callable[[uuid.UUID, str], Awaitable[int]]


def ceil_ms(moment: datetime) -> int:
    """Unix milliseconds of `moment`, rounded up (exact: no float on the way)."""
    return -((EPOCH - moment) // MILLISECOND)


class RevocationUnavailable(ServiceUnavailable):
    """The record could not be written: the change that needs it must not commit."""


class Revocations:
    """Per-subject not-before times: `revoke` writes one, `check` refuses older tokens."""

    def __init__(
        self,
        client: Redis | None,
        *,
        prefix: str,
        max_age: int,
        cache_ttl: float,
        timeout: float,
        retry: float,
        fallback: Fallback | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.max_age = max_age  # s: the longest lifetime of an access token
        self.cache_ttl = cache_ttl
        self.timeout = timeout
        self.fallback = fallback
        self._monotonic = monotonic
        # subject -> (fresh until (monotonic), not-before ms, 0: none); without Redis the
        # only copy, kept for max_age
        self._known: dict[uuid.UUID, tuple[float, int]] = {}
        self._breaker = CircuitBreaker(
            "redis",
            failure_threshold=1,
            reset_timeout=retry,
            failure_exceptions=FAILURES,
            clock=monotonic,
        )

    def key(self, subject: uuid.UUID) -> str:
        return f"{self.prefix}{subject}"

    async def revoke(self, subject: uuid.UUID, not_before: int) -> int:
        """Copy the record "tokens of `subject` issued before `not_before` (ms) are void";
        RevocationUnavailable when Redis does not take it within the timeout."""
        if self.client is not None:
            try:
                ttl = self.max_age + CLOCK_MARGIN
                await self._redis(self.client.set(self.key(subject), not_before, ex=ttl))
            except ServiceUnavailable:
                raise RevocationUnavailable(
                    "the sessions of this account could not be ended (Redis unavailable); "
                    "nothing was changed, try again"
                ) from None
        fresh = self.cache_ttl if self.client is not None else self.max_age + CLOCK_MARGIN
        self._remember(subject, not_before, fresh)
        return not_before

    async def check(self, principal: Principal, token: str = "") -> None:
        """Unauthorized("token revoked") for a token issued before its subject's record;
        Redis away: the fallback (asked with `token`); 503 when neither answers."""
        not_before = self._cached(principal.user_id)
        if not_before is None:
            try:
                not_before = (await self._fetch([principal.user_id]))[principal.user_id]
            except ServiceUnavailable as outage:
                not_before = await self._from_record(principal.user_id, token, outage)
        if principal.issued_at_ms < not_before:
            raise Unauthorized("token revoked")

    async def revoked(self, principals: Iterable[Principal]) -> list[Principal]:
        """Those of `principals` that are revoked now, with one Redis read for every subject
        not in the cache (the chat sweep over its open sockets); 503 as `check`."""
        principals = list(principals)
        stale = {p.user_id for p in principals if self._cached(p.user_id) is None}
        fetched = await self._fetch(list(stale)) if stale else {}
        found = []
        for principal in principals:
            not_before = fetched.get(principal.user_id)
            if not_before is None:
                not_before = self._cached(principal.user_id) or 0
            if principal.issued_at_ms < not_before:
                found.append(principal)
        return found

    async def _from_record(self, subject: uuid.UUID, token: str, outage: ServiceUnavailable) -> int:
        """Redis is away: the record through the fallback, else what this process last
        read (stale if error), else 503 (Redis's)."""
        try:
            if self.fallback is None or not token:
                raise outage
            not_before = await self.fallback(subject, token)
        except ServiceUnavailable:
            known = self._known.get(subject)
            if known is None:
                raise outage from None
            return known[1]
        self._remember(subject, not_before, self.cache_ttl)
        return not_before

    def _cached(self, subject: uuid.UUID) -> int | None:
        known = self._known.get(subject)
        if known is None or known[0] <= self._monotonic():  # a TTL of 0: never fresh
            return None if self.client is not None else 0  # kept: the stale-if-error value
        return known[1]

    def _remember(self, subject: uuid.UUID, not_before: int, ttl: float) -> None:
        if len(self._known) >= CACHE_SIZE:
            self._known.clear()
        self._known[subject] = (self._monotonic() + ttl, not_before)

    async def _fetch(self, subjects: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Read the records of `subjects` (a memory-only instance has none left)."""
        if self.client is None:
            return dict.fromkeys(subjects, 0)
        values = await self._redis(self.client.mget([self.key(s) for s in subjects]))
        found = {}
        for subject, value in zip(subjects, values, strict=True):
            found[subject] = int(value) if value is not None else 0
            self._remember(subject, found[subject], self.cache_ttl)
        return found

    async def _redis(self, call: Any) -> Any:
        """One bounded Redis call behind the breaker; every failure is 503."""
        try:
            async with self._breaker:
                async with asyncio.timeout(self.timeout):
                    return await call
        except CircuitOpen as exc:
            call.close()  # never awaited
            raise ServiceUnavailable(
                "token revocations cannot be checked", retry_after=exc.retry_after
            ) from None
        except FAILURES as exc:
            log.warning("revocations_unavailable", error=repr(exc))
            raise ServiceUnavailable("token revocations cannot be checked") from None
