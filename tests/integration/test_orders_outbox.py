"""The points outbox of the orders service against real PostgreSQL and the real points
server (gRPC on loopback): every award applied exactly once, whatever happens between."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from lib.clients.points import PointsClient
from lib.db.connecting import connect
from lib.db.pool import Database
from lib.grpc.client import ChannelPool
from lib.resilience.breaker import CircuitBreaker
from services.orders.db import outbox as q
from services.orders.relay import POINTS_TOPIC, OutboxRelay, award_key
from tests.integration.points_support import Points
from tests.proxy import TcpProxy
from tools.time_scale import scaled

POINTS = 10
CALL_TIMEOUT = 1.0
SETTLE = scaled(30.0)  # seconds every test allows its awards to arrive, far above the ~1 s needed


class Killed(BaseException):
    """The relay process dies: nothing after this point of the round runs."""


class Recording:
    """The real points client, remembering every key it delivered."""

    def __init__(self, client: PointsClient, *, die_after: int = 0) -> None:
        self.client, self.keys, self.die_after = client, Counter[str](), die_after

    async def add_user_points(self, user_id: str, delta: int, reason: str, key: str) -> int:
        balance = await self.client.add_user_points(user_id, delta, reason, key)
        self.keys[key] += 1
        if self.die_after and sum(self.keys.values()) >= self.die_after:
            raise Killed
        return balance


@pytest.fixture
async def db(orders_dsn: str) -> AsyncIterator[Database]:
    database = await connect(orders_dsn, min_size=1, max_size=5)
    async with database.acquire() as conn:  # each test starts from an empty outbox
        await conn.execute("DELETE FROM outbox")
    yield database
    await database.close()


@pytest.fixture
async def proxy(points: Points) -> AsyncIterator[TcpProxy]:
    running = await TcpProxy("127.0.0.1", points.server.port).start()
    yield running
    await running.stop()


@pytest.fixture
async def channels(proxy: TcpProxy) -> AsyncIterator[ChannelPool]:
    pool = ChannelPool(f"127.0.0.1:{proxy.port}", 1)
    yield pool
    await pool.close()


def relay(db: Database, adder: Any, **kw: Any) -> OutboxRelay:
    options: dict[str, Any] = {"interval": 0.05, "retry_max": 0.05, "call_timeout": CALL_TIMEOUT}
    return OutboxRelay(db, adder, **{**options, **kw})


def client(channels: ChannelPool) -> PointsClient:
    breaker = CircuitBreaker("points", failure_threshold=3, reset_timeout=0.1)
    return PointsClient(channels, timeout=CALL_TIMEOUT, breaker=breaker)


async def complete_jobs(db: Database, count: int) -> list[str]:
    """What POST /v1/jobs/{id}/complete writes: one award per job, for a new provider."""
    providers = []
    async with db.transaction() as conn:
        for _ in range(count):
            job_id, provider = uuid.uuid4(), str(uuid.uuid4())
            await q.enqueue_outbox(
                conn,
                topic=POINTS_TOPIC,
                aggregate_id=job_id,
                payload={"user_id": provider, "delta": POINTS, "reason": "job completed"},
                idempotency_key=award_key(job_id),
                traceparent=None,
            )
            providers.append(provider)
    return providers


async def drain(*relays: OutboxRelay, db: Database) -> None:
    """Run rounds until nothing is pending (a bounded poll: deferred rows come due)."""
    deadline = time.monotonic() + SETTLE
    while True:
        await asyncio.gather(*(r.run_once() for r in relays))
        async with db.acquire() as conn:
            backlog = await q.outbox_backlog(conn)
        if backlog is None or backlog.pending == 0:
            return
        assert time.monotonic() < deadline, f"{backlog.pending} awards still pending"
        await asyncio.sleep(0.02)


async def assert_applied_once(points: Points, providers: list[str]) -> None:
    for provider in providers:
        assert await points.balance(provider) == POINTS
        assert await points.ledger_rows(provider) == 1


async def test_points_down_then_back_every_award_once(
    db: Database, points: Points, proxy: TcpProxy, channels: ChannelPool
) -> None:
    providers = await complete_jobs(db, 20)
    port = proxy.port
    await proxy.stop()
    recording = Recording(client(channels))
    worker = relay(db, recording)
    await worker.run_once()  # points is down: everything deferred, nothing applied
    pending = REGISTRY.get_sample_value("outbox_pending", {"service": "orders"})
    assert pending == 20
    oldest = REGISTRY.get_sample_value("outbox_oldest_age_seconds", {"service": "orders"})
    assert oldest is not None
    assert oldest >= 0
    for provider in providers:
        assert await points.balance(provider) is None
    await proxy.start(port)
    await drain(worker, db=db)
    await assert_applied_once(points, providers)
    assert REGISTRY.get_sample_value("outbox_pending", {"service": "orders"}) == 0
    assert REGISTRY.get_sample_value("outbox_oldest_age_seconds", {"service": "orders"}) == 0


async def test_relay_killed_mid_delivery_still_once(
    db: Database, points: Points, channels: ChannelPool
) -> None:
    providers = await complete_jobs(db, 5)
    dying = relay(db, Recording(client(channels), die_after=2), call_timeout=0.05)
    with pytest.raises(Killed):
        await dying.run_once()  # delivered two, marked one, then died holding the lease
    survivor = Recording(client(channels))
    await drain(relay(db, survivor, call_timeout=0.05), db=db)  # after the lease ran out
    await assert_applied_once(points, providers)
    assert sum(survivor.keys.values()) == 4  # the second again, the three never tried


async def test_two_relays_at_once_never_double_deliver(
    db: Database, points: Points, channels: ChannelPool
) -> None:
    providers = await complete_jobs(db, 20)
    first, second = Recording(client(channels)), Recording(client(channels))
    await drain(relay(db, first, batch=3), relay(db, second, batch=3), db=db)
    await assert_applied_once(points, providers)
    delivered = first.keys + second.keys
    assert len(delivered) == 20
    assert set(delivered.values()) == {1}
    assert first.keys
    assert second.keys
