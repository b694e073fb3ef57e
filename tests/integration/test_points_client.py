"""PointsClient and ChannelPool against the real points server (and against none)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import structlog

from lib.clients.points import PointsClient
from lib.errors import BadRequest, CircuitOpen, Conflict, ServiceUnavailable
from lib.grpc.client import ChannelPool
from lib.pb.point import PointReply, PointRequest
from lib.resilience.breaker import BreakerState, CircuitBreaker
from tests.integration.points_support import (
    GET,
    CountingProxy,
    Points,
    log_lines,
    new_id,
    running_points,
)
from tools.local.ports import free_port


@pytest.fixture
async def client(points: Points) -> AsyncIterator[PointsClient]:
    pool = ChannelPool(points.target, 2)
    yield PointsClient(pool, timeout=5.0, breaker=CircuitBreaker("points", failure_threshold=2))
    await pool.close()


async def test_typed_calls(points: Points, client: PointsClient) -> None:
    known, unknown = new_id(), new_id()
    await points.seed({known: 23})
    assert await client.get_user_points(known) == 23
    assert await client.get_user_points(unknown) == 0
    ids = [known, unknown] + [new_id() for _ in range(98)]
    listed = await client.get_user_list_points(ids)
    assert listed == {known: 23, **dict.fromkeys(ids[1:], 0)}
    assert await client.get_user_list_points([]) == {}
    assert await client.add_user_points(known, 10, "job", "client-1") == 33
    assert await client.add_user_points(known, 10, "job", "client-1") == 33  # replay


async def test_answers_map_to_app_errors_without_opening_the_breaker(
    points: Points, client: PointsClient
) -> None:
    user = new_id()
    await client.add_user_points(user, 1, "job", f"k-{user}")
    for _ in range(5):  # threshold 2: these are answers, not failures
        with pytest.raises(BadRequest, match="user_id"):
            await client.get_user_points("nope")
    with pytest.raises(Conflict, match="idempotency_key"):
        await client.add_user_points(user, 2, "job", f"k-{user}")
    with pytest.raises(Conflict, match="insufficient"):
        await client.add_user_points(user, -5, "refund", f"r-{user}")
    assert client.breaker is not None
    assert client.breaker.state is BreakerState.CLOSED


async def test_request_id_forwarded(client: PointsClient, points_log: Path) -> None:
    await client.get_user_points(new_id(), request_id="explicit-1")
    with structlog.contextvars.bound_contextvars(request_id="bound-2"):
        await client.get_user_list_points([new_id()])
    ids = [line["request_id"] for line in log_lines(points_log)]
    assert "explicit-1" in ids
    assert "bound-2" in ids


# ------------------------------------------------------------------ the pool


async def test_pool_reuses_a_bounded_set_of_connections(points: Points) -> None:
    proxy = await CountingProxy("127.0.0.1", points.server.port).start()
    pool = ChannelPool(f"127.0.0.1:{proxy.port}", 3)
    try:
        assert len(pool) == 3
        seen = [pool.channel() for _ in range(6)]
        assert seen[:3] == seen[3:]
        assert len({id(c) for c in seen}) == 3
        get = pool.unary(GET, PointReply.parse)
        for _ in range(10):
            await asyncio.gather(
                *(get(PointRequest(user_id=new_id()), timeout=5) for _ in range(6))
            )
        assert proxy.accepted == 3  # 60 calls, one connection per channel, reused
    finally:
        await pool.close()
        await proxy.stop()
    assert pool.closed
    assert all(c.get_state() is grpc.ChannelConnectivity.SHUTDOWN for c in pool.channels)
    with pytest.raises(RuntimeError, match="closed"):
        pool.channel()


async def test_new_channel_per_call_opens_a_connection_each(points: Points) -> None:
    """The contrast the pool exists for (and what bench/points_client.py measures)."""
    proxy = await CountingProxy("127.0.0.1", points.server.port).start()
    try:
        for _ in range(4):
            pool = ChannelPool(f"127.0.0.1:{proxy.port}", 1)
            await pool.unary(GET, PointReply.parse)(PointRequest(user_id=new_id()), timeout=5)
            await pool.close()
        assert proxy.accepted == 4
    finally:
        await proxy.stop()


# ------------------------------------------------------------------ the breaker


async def test_server_down_opens_the_breaker_then_fails_fast(points_dsn: str) -> None:
    timeout = 2.0
    async with running_points(points_dsn) as running:
        pool = ChannelPool(running.target, 2)
        breaker = CircuitBreaker("points", failure_threshold=3, reset_timeout=30)
        client = PointsClient(pool, timeout=timeout, breaker=breaker)
        assert await client.get_user_list_points([new_id()]) != {}
    # the server is stopped now
    try:
        for _ in range(3):
            with pytest.raises(ServiceUnavailable, match="points"):
                await client.get_user_list_points([new_id()])
        assert breaker.state is BreakerState.OPEN
        started = time.perf_counter()
        for _ in range(10):
            with pytest.raises(CircuitOpen):
                await client.get_user_list_points([new_id()])
        # ten refusals in less than one call's deadline: none of them waited for one
        assert time.perf_counter() - started < timeout
    finally:
        await pool.close()


async def test_deadline_counts_as_failure(points: Points) -> None:
    """A server that accepts and never answers: DEADLINE_EXCEEDED -> breaker failure."""

    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()  # hold the connection, say nothing
        writer.close()

    port = free_port()
    server = await asyncio.start_server(silent, "127.0.0.1", port)
    pool = ChannelPool(f"127.0.0.1:{port}", 1)
    breaker = CircuitBreaker("points", failure_threshold=2, reset_timeout=30)
    timeout = 0.5
    client = PointsClient(pool, timeout=timeout, breaker=breaker)
    try:
        for _ in range(2):
            started = time.perf_counter()
            with pytest.raises(ServiceUnavailable, match="timed out"):
                await client.get_user_points(new_id())
            assert 0.9 * timeout < time.perf_counter() - started < timeout + 2.0  # the deadline
        started = time.perf_counter()
        with pytest.raises(CircuitOpen):
            await client.get_user_points(new_id())
        assert time.perf_counter() - started < timeout  # refused without waiting for it
    finally:
        await pool.close()
        server.close()
        for writer in held:  # the handlers end with their connections, not with the test run
            writer.close()
        await server.wait_closed()
