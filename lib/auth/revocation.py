"""Token revocation (ADR 0010): "the tokens of subject S issued before T are void".

The record is the users database (table token_revocations): the users service writes T
with PostgreSQL's clock in the transaction that ends the sessions (an account deleted, a
password changed or reset) and passes it to `revoke`, which copies it to Redis, the fast
path: the hash `<REVOCATION_PREFIX>all` holds one field per subject, T in Unix
milliseconds. Every service checks each token it accepts against it (`check`, called by
the auth middleware and the chat WebSocket), with a short cache per subject
(REVOCATION_CACHE_TTL, 1 s). Tokens carry `iat` in milliseconds read from the same clock
(lib.auth.tokens), T is rounded up to the millisecond: every token signed before the
revocation is void, one signed after it is not, whatever the hosts' clocks say.

Whatever Redis holds may be lost at any moment (a restart without persistence, a flush,
an eviction, a failover to a replica that lacks the last writes). The hash's `epoch` field
is the marker: users sets it once the hash holds every revocation younger than the
longest token life (lib.auth.revocation_restore), and every read asks for it in the same
HMGET as the subjects. A hash without it is a Redis that lost (or never had) the
revocations, not "no revocation": the process asks the record (`fallback`) as it does
with Redis unreachable, until users has put them back. A hash lost as a whole takes its
marker with it (eviction drops whole keys), so no loss passes for "none".

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
from collections.abc import Awaitable, Callable, Mapping
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
HASH_NAME = "all"  # the Redis hash <prefix>all: one field per subject, and the marker
REFUSED = 2**63  # a not-before no token passes: the record refused the subject's token
MARKER = "epoch"  # its field users sets once the hash holds every live revocation

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
        self.hash_key = f"{prefix}{HASH_NAME}"  # every subject's field, and the marker
        self.max_age = max_age  # s: the longest lifetime of an access token
        self.cache_ttl = cache_ttl
        self.timeout = timeout
        self.fallback = fallback
        self.intact: bool | None = None  # the marker, as last read (None: not read yet)
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

    async def revoke(self, subject: uuid.UUID, not_before: int) -> int:
        """Copy the record "tokens of `subject` issued before `not_before` (ms) are void";
        RevocationUnavailable when Redis does not take it within the timeout."""
        if self.client is not None:
            try:
                await self._redis(self.client.hset(self.hash_key, str(subject), not_before))
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
        Redis away or without its marker: the fallback (asked with `token`); 503 when
        neither answers."""
        not_before = self._cached(principal.user_id)
        if not_before is None:
            not_before = (await self._read({principal.user_id: token}))[principal.user_id]
        if principal.issued_at_ms < not_before:
            raise Unauthorized("token revoked")

    async def revoked(self, tokens: Mapping[Principal, str]) -> list[Principal]:
        """Those of the principals (each with its token) that are revoked now, with one
        Redis read for every subject not in the cache (the chat sweep over its open
        sockets). Redis unreachable: 503 (no revocation can be written meanwhile); Redis
        without its marker: the record, as `check`."""
        newest = sorted(tokens, key=lambda p: p.issued_at_ms)  # a subject's newest token last
        stale = {p.user_id: tokens[p] for p in newest if self._cached(p.user_id) is None}
        fetched = await self._read(stale, sweep=True) if stale else {}
        found = []
        for principal in tokens:
            not_before = fetched.get(principal.user_id)
            if not_before is None:
                not_before = self._cached(principal.user_id) or 0
            if principal.issued_at_ms < not_before:
                found.append(principal)
        return found

    async def _read(
        self, wanted: dict[uuid.UUID, str], *, sweep: bool = False
    ) -> dict[uuid.UUID, int]:
        """The not-before of each subject (with the token being checked): Redis's, when
        its marker says it holds every revocation; else the record's as well."""
        try:
            held = await self._fetch(list(wanted))
        except ServiceUnavailable as outage:
            if sweep:
                raise
            return {s: await self._from_record(s, t, outage) for s, t in wanted.items()}
        if self.client is None:
            return held
        if self.intact:
            for subject, not_before in held.items():
                self._remember(subject, not_before, self.cache_ttl)
            return held
        lost = ServiceUnavailable("token revocations cannot be checked (Redis lost them)")
        found = {}
        for subject, token in wanted.items():
            try:
                found[subject] = await self._from_record(subject, token, lost, held[subject])
            except Unauthorized:
                if not sweep:
                    raise
                found[subject] = REFUSED  # even its newest token: close its sockets
        return found

    async def _from_record(
        self, subject: uuid.UUID, token: str, outage: ServiceUnavailable, floor: int = 0
    ) -> int:
        """Redis away, or without its revocations: the record through the fallback, else
        what this process last read (stale if error), else 503. `floor`: what Redis holds
        (a revocation written since it lost the rest)."""
        try:
            if self.fallback is None or not token:
                raise outage
            not_before = max(floor, await self.fallback(subject, token))
        except ServiceUnavailable:
            known = self._known.get(subject)
            if known is None:
                raise outage from None
            return max(floor, known[1])
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
        """Read the fields of `subjects` and the marker in one HMGET (atomic: a loss
        between two reads cannot pass for "no revocation"); sets `intact`."""
        if self.client is None:
            return dict.fromkeys(subjects, 0)
        fields = [MARKER, *(str(s) for s in subjects)]
        marker, *values = await self._redis(self.client.hmget(self.hash_key, fields))
        intact = marker is not None
        if intact != self.intact:
            (log.info if intact else log.warning)(
                "revocations_marker", present=intact, key=self.hash_key
            )
            self.intact = intact
        return {
            subject: int(value) if value is not None else 0
            for subject, value in zip(subjects, values, strict=True)
        }

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
