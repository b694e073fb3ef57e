"""lib/auth/revocation_restore.py against real Redis (the shared one, under this test's own
prefix): a restore writes what the hash lacks and never moves a field back, sets the
marker only while its attempt's token is still there (a loss or another restore since
`begin`: False, nothing marked), the newest record's check, the prune (older fields only,
never the marker) and the hash's expiry; a Revocations reading it sees "intact" exactly
when the marker is there."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from lib.auth import revocation_restore
from lib.auth.principal import Principal, Role
from lib.auth.revocation import MARKER, Revocations
from lib.auth.revocation_restore import RESTORING, RevocationRestorer
from lib.errors import ServiceUnavailable
from tests.reliability.throwaway import RedisServer
from tests.servers import Servers
from tools.time_scale import scaled

A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))


@pytest.fixture
async def client(servers: Servers) -> AsyncIterator[Redis]:
    client = Redis.from_url(servers.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def revocations(client: Redis, redis_prefix: str) -> Revocations:
    return Revocations(
        client,
        prefix=f"{redis_prefix}restore:{uuid.uuid4().hex[:8]}:",
        max_age=900,
        cache_ttl=0.0,
        timeout=1.0,
        retry=1.0,
    )


def fields(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


async def test_a_restore_fills_what_is_missing_keeps_later_fields_and_sets_the_marker(
    client: Redis, revocations: Revocations
) -> None:
    restorer = RevocationRestorer(revocations)
    key = revocations.hash_key
    assert not await restorer.marked()
    token = await restorer.begin()
    assert fields(await client.hgetall(key)) == {RESTORING: token}
    await revocations.revoke(B, 9000)  # written during the restore: later than the record
    assert await restorer.finish(token, [(A, 5000), (B, 7000)])
    held = fields(await client.hgetall(key))
    assert held.pop(MARKER)  # a new epoch
    assert held == {str(A): "5000", str(B): "9000"}  # B not moved back, `restoring` gone
    assert await restorer.marked()
    assert await restorer.holds(A, 5000)
    assert await restorer.holds(B, 8000)
    assert not await restorer.holds(A, 5001)
    assert not await restorer.holds(C, 1)


async def test_a_loss_or_another_restore_since_begin_fails_the_attempt(
    client: Redis, revocations: Revocations
) -> None:
    restorer = RevocationRestorer(revocations)
    key = revocations.hash_key
    token = await restorer.begin()
    await client.delete(key)  # the hash lost (a flush, a restart, an eviction)
    assert not await restorer.finish(token, [(A, 5000)])
    assert await client.hgetall(key) == {}  # nothing written, nothing marked
    first = await restorer.begin()
    second = await restorer.begin()  # another replica's attempt
    assert not await restorer.finish(first, [(A, 5000)])
    assert not await restorer.marked()
    assert await restorer.finish(second, [(A, 5000)])
    assert await restorer.marked()


async def test_the_readers_see_intact_exactly_while_the_marker_is_there(
    client: Redis, revocations: Revocations
) -> None:
    restorer = RevocationRestorer(revocations)
    principal = Principal(A, Role.CUSTOMER, True, "jti", datetime(2100, 1, 1, tzinfo=UTC), 1)
    revocations.fallback = None
    assert await restorer.finish(await restorer.begin(), [])
    await revocations.check(principal, "t")
    assert revocations.intact is True
    await restorer.unmark()
    assert not await restorer.marked()
    stranger = Principal(B, Role.CUSTOMER, True, "jti", datetime(2100, 1, 1, tzinfo=UTC), 1)
    with pytest.raises(ServiceUnavailable, match="Redis lost them"):
        await revocations.check(stranger, "t")  # never read, no record to ask here: 503
    assert revocations.intact is False
    await revocations.check(principal, "t")  # read before: its last record (stale if error)


async def test_prune_drops_older_fields_only_and_keep_alive_sets_the_expiry(
    client: Redis, revocations: Revocations
) -> None:
    restorer = RevocationRestorer(revocations)
    key = revocations.hash_key
    assert await restorer.finish(await restorer.begin(), [(A, 1000), (B, 2000), (C, 3000)])
    assert await restorer.prune(2000) == 1  # strictly older than the cutoff
    assert set(fields(await client.hgetall(key))) == {MARKER, str(B), str(C)}
    assert await restorer.prune(10**13) == 2
    assert set(fields(await client.hgetall(key))) == {MARKER}  # the marker stays
    started = time.monotonic()
    await restorer.keep_alive(960)
    ttl = await client.ttl(key)
    assert 960 - (time.monotonic() - started) - 1 <= ttl <= 960


def test_a_restorer_needs_redis() -> None:
    memory = Revocations(None, prefix="p:", max_age=900, cache_ttl=1.0, timeout=1.0, retry=1.0)
    with pytest.raises(ValueError, match=r"^a restore needs Redis \(REDIS_URL\)$"):
        RevocationRestorer(memory)


async def test_every_call_is_bounded_by_the_timeout(
    monkeypatch: pytest.MonkeyPatch, redis_prefix: str, own_redis: RedisServer
) -> None:
    """A frozen Redis (no answer, no reset): the keeper's round fails within TIMEOUT
    instead of hanging (it logs and tries again next round)."""
    client = Redis.from_url(own_redis.url, socket_connect_timeout=1)
    try:
        revocations = Revocations(client, prefix=f"{redis_prefix}frozen:", max_age=900,
                                  cache_ttl=1.0, timeout=1.0, retry=1.0)  # fmt: skip
        restorer = RevocationRestorer(revocations)
        assert not await restorer.marked()  # connected, answering (the module's own bound)
        assert own_redis.pid is not None
        monkeypatch.setattr(revocation_restore, "TIMEOUT", 0.2)
        os.kill(own_redis.pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await restorer.marked()
        assert time.monotonic() - started < 0.2 + scaled(1.0)  # a loaded machine's margin
    finally:
        await client.aclose()
