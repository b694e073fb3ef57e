"""lib/auth/revocation.py against real Redis: the millisecond boundary, the cache bound
between processes, the hash and its marker, and a Redis that is stopped or frozen (fail
closed for a subject never read: 503 within the timeout, never a pass, never a hang; one
read before keeps its last record), then back empty (503 until the marker is back: the
restore is users' job, tests/integration/test_revocation_loss.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from lib.auth.principal import Principal, Role
from lib.auth.revocation import CLOCK_MARGIN, MARKER, Revocations, RevocationUnavailable
from lib.auth.tokens import TokenSigner, TokenVerifier, generate_keypair
from lib.errors import ServiceUnavailable, Unauthorized
from tests.integration.auth_support import wall_ms
from tests.reliability.throwaway import RedisServer
from tests.servers import Servers

MAX_AGE = 900
TIMEOUT = 0.2


class Clock:
    """A monotonic clock the test moves: the cache's bound without sleeping."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def principal(user: uuid.UUID, issued_at_ms: int) -> Principal:
    return Principal(user, Role.CUSTOMER, True, "jti", datetime(2100, 1, 1, tzinfo=UTC),
                     issued_at_ms)  # fmt: skip


def revocations(client: Redis | None, prefix: str, clock: Clock, **kw: float) -> Revocations:
    return Revocations(
        client,
        prefix=prefix,
        max_age=MAX_AGE,
        cache_ttl=kw.get("cache_ttl", 1.0),
        timeout=kw.get("timeout", TIMEOUT),
        retry=kw.get("retry", 1.0),
        monotonic=clock,
    )


@pytest.fixture
async def client(servers: Servers) -> AsyncIterator[Redis]:
    client = Redis.from_url(servers.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return f"{redis_prefix}revoked:{uuid.uuid4().hex[:8]}:"


async def mark(client: Redis, prefix: str) -> None:
    """The marker users sets once the hash holds every revocation (its keeper's job)."""
    await client.hset(f"{prefix}all", MARKER, "test")
    await client.expire(f"{prefix}all", MAX_AGE + CLOCK_MARGIN)


async def test_a_real_login_in_the_same_second_as_the_revocation_still_works(
    client: Redis, prefix: str
) -> None:
    """Tokens signed by the real signer just before and just after T, within one second:
    the one before is void, the one after passes."""
    private, public = generate_keypair()
    signer, verifier = TokenSigner(private, MAX_AGE), TokenVerifier(public)
    writer, user = revocations(client, prefix, Clock()), uuid.uuid4()
    if time.time() % 1 > 0.5:  # leave room in this second for three steps
        await asyncio.sleep(1.01 - time.time() % 1)
    before, _ = signer.issue(user, Role.CUSTOMER, True)
    await asyncio.sleep(0.002)
    not_before = await writer.revoke(user, wall_ms())
    await asyncio.sleep(0.002)
    after, _ = signer.issue(user, Role.CUSTOMER, True)
    old, new = verifier.verify(before), verifier.verify(after)
    assert old.issued_at_ms // 1000 == new.issued_at_ms // 1000 == not_before // 1000
    with pytest.raises(Unauthorized, match="token revoked"):
        await writer.check(old)
    await writer.check(new)


async def test_another_process_sees_it_within_the_cache_ttl(client: Redis, prefix: str) -> None:
    user, clock = uuid.uuid4(), Clock()
    await mark(client, prefix)
    writer = revocations(client, prefix, Clock())
    reader = revocations(client, prefix, clock, cache_ttl=1.0)
    token = principal(user, int(time.time() * 1000) - 5)
    await reader.check(token)  # read from Redis: no record, remembered for 1 s
    not_before = await writer.revoke(user, wall_ms())
    assert writer.hash_key == f"{prefix}all"
    assert await client.hget(writer.hash_key, str(user)) == str(not_before).encode()
    clock.t += 0.9
    await reader.check(token)  # still within the cache's bound: the old answer
    clock.t += 0.2
    with pytest.raises(Unauthorized, match="token revoked"):
        await reader.check(token)
    # the sweep's batch read: only the revoked principal comes back
    other = principal(uuid.uuid4(), 0)
    sockets = {token: "its token", other: "another token"}
    assert await revocations(client, prefix, Clock()).revoked(sockets) == [token]


async def test_redis_stopped_or_frozen_fails_closed_within_the_timeout(
    own_redis: RedisServer, prefix: str
) -> None:
    client = Redis.from_url(own_redis.url, socket_connect_timeout=1)
    clock = Clock()
    checker = revocations(client, prefix, clock, cache_ttl=0.0, retry=1.0)
    token = principal(uuid.uuid4(), int(time.time() * 1000))
    try:
        await mark(client, prefix)
        await checker.check(token)  # up: no record
        revoked = principal(uuid.uuid4(), int(time.time() * 1000))
        await revocations(client, prefix, Clock()).revoke(revoked.user_id, wall_ms())
        with pytest.raises(Unauthorized):
            await checker.check(revoked)
        stranger = principal(uuid.uuid4(), int(time.time() * 1000))
        assert own_redis.pid is not None
        os.kill(own_redis.pid, signal.SIGSTOP)  # frozen: no answer, no RST
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable, match="cannot be checked"):
            await checker.check(stranger)  # a subject this process never read
        assert time.monotonic() - started < TIMEOUT + 1.0  # bounded, with a loaded margin
        await checker.check(token)  # one it read: its last record (none), stale if error
        with pytest.raises(Unauthorized):
            await checker.check(revoked)  # ... and a revoked one stays revoked
        # the breaker is open: every request answers at once, without waiting again
        started = time.monotonic()
        for _ in range(20):
            with pytest.raises(ServiceUnavailable) as failed:
                await checker.check(stranger)
        assert time.monotonic() - started < TIMEOUT
        assert failed.value.status == 503
        assert failed.value.headers["Retry-After"]
        with pytest.raises(RevocationUnavailable, match="nothing was changed"):
            await checker.revoke(token.user_id, wall_ms())
        os.kill(own_redis.pid, signal.SIGCONT)
        own_redis.stop()  # now refused outright
        clock.t += 1.5  # the breaker lets a trial through: refused at once
        with pytest.raises(ServiceUnavailable):
            await checker.check(stranger)
        own_redis.start()  # back, but empty: no marker, and no record to ask here
        clock.t += 1.5
        with pytest.raises(ServiceUnavailable, match="Redis lost them"):
            await checker.check(stranger)
        await mark(client, prefix)  # restored (users' keeper): checks pass again
        await checker.check(stranger)
    finally:
        await client.aclose()
