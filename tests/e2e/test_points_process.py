"""`python -m services.points` as a real process: side port, gRPC, graceful SIGTERM, and
ADMIN's list of its writes' audit events on the side port."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import grpc
import pytest

from lib.auth.principal import Role
from lib.grpc.client import ChannelPool
from lib.pb.point import AddPointsRequest, PointReply, PointRequest
from tests.e2e.gateway_stack import Gateway, wait_until
from tests.integration.auth_support import KEYS, bearer
from tests.proxy import TcpProxy, through
from tools.local.ports import free_port
from tools.local.service_process import PROCESS_MARGIN, ServiceProcess

GET = "/point.PointServer/GetUserPoints"
ADD = "/point.PointServer/AddUserPoints"


@pytest.fixture
async def slow_db(migrated_db: Callable[[str], str]) -> AsyncIterator[tuple[str, TcpProxy]]:
    dsn = migrated_db("points")
    parts = urlsplit(dsn)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 3306).start()
    yield dsn, proxy
    await proxy.stop()


async def test_points_process_serves_and_stops_gracefully(
    slow_db: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    dsn, proxy = slow_db
    # SHUTDOWN_TIMEOUT: far longer than the exit may take, to tell them apart
    timeout = 3 * PROCESS_MARGIN
    http_port, grpc_port = free_port(), free_port()
    log = tmp_path / "points.log"
    env = {
        "POINTS_DATABASE_URL": through(dsn, proxy),
        "POINTS_PORT": str(http_port),
        "POINTS_GRPC_PORT": str(grpc_port),
        "DB_POOL_MIN": "1",
        "WORKERS": "1",
        "SHUTDOWN_TIMEOUT": str(timeout),
    }
    service = ServiceProcess(env, log, name="points")
    proc, url = service.proc, service.url
    pool = ChannelPool(f"127.0.0.1:{grpc_port}", 1)
    get = pool.unary(GET, PointReply.parse)
    try:
        await service.wait_healthy()
        assert (await get(PointRequest(user_id=str(uuid.uuid4())), timeout=5)).user_point == "0"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/health") as resp:
                assert resp.status == 200
                assert (await resp.json()) == {"status": "ok"}
            line = f'grpc_server_handled_total{{code="OK",method="{GET}"}} 1.0'

            async def counted() -> bool:  # the client may see the reply before it is counted
                async with http.get(f"{url}/metrics") as resp:
                    return line in await resp.text()

            await wait_until(counted, "the call is counted in /metrics", PROCESS_MARGIN)

        proxy.hold()  # the database's answers wait at the proxy until release()
        in_flight = asyncio.create_task(
            get(PointRequest(user_id=str(uuid.uuid4())), timeout=timeout + PROCESS_MARGIN)
        )
        await asyncio.wait_for(proxy.held(1), PROCESS_MARGIN)  # the call is in its handler
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        await service.wait_not_listening(grpc_port, PROCESS_MARGIN)  # draining, not serving
        assert not in_flight.done(), "SIGTERM must find the call in flight"
        proxy.release()
        assert (await in_flight).user_point == "0"  # finished during the grace period
        code = await asyncio.to_thread(proc.wait, timeout + PROCESS_MARGIN)
        assert code == 0, log.read_text()
        # it left once the call was done, not when the grace period ran out
        assert time.monotonic() - signalled < timeout - PROCESS_MARGIN
        assert '"event":"grpc_stopped"' in log.read_text()
    finally:
        proxy.release()
        await pool.close()
        service.stop()
    fresh = ChannelPool(f"127.0.0.1:{grpc_port}", 1)  # the process is gone
    try:
        with pytest.raises(grpc.aio.AioRpcError):
            await fresh.unary(GET, PointReply.parse)(PointRequest(user_id="x"), timeout=1)
    finally:
        await fresh.close()


async def test_the_side_port_lists_the_events_of_points_writes_for_admin(
    migrated_db: Callable[[str], str], tmp_path: Path
) -> None:
    """AddUserPoints records its event (ADR 0057); ADMIN lists it on the side port with the
    house list, directly and through NGINX (`/api/points/v1/audit-events`, the one path of
    points the gateway routes); another role is refused, a token-less call too."""
    public_key = tmp_path / "jwt.pub"
    public_key.write_text(KEYS[1])
    http_port, grpc_port = free_port(), free_port()
    env = {
        "POINTS_DATABASE_URL": migrated_db("points"),
        "POINTS_PORT": str(http_port),
        "POINTS_GRPC_PORT": str(grpc_port),
        "JWT_PUBLIC_KEY_FILE": str(public_key),
        "DB_POOL_MIN": "1",
        "WORKERS": "1",
    }
    service = ServiceProcess(env, tmp_path / "points.log", name="points")
    docs = tmp_path / "docs"
    docs.mkdir()
    gateway = Gateway(tmp_path, {"points": [f"127.0.0.1:{http_port}"]}, docs)
    pool = ChannelPool(f"127.0.0.1:{grpc_port}", 1)
    user = str(uuid.uuid4())
    try:
        await service.wait_healthy()
        await gateway.start()
        add = pool.unary(ADD, PointReply.parse)
        request = AddPointsRequest(user_id=user, delta=5, reason="job done", idempotency_key=user)
        assert (await add(request, timeout=5)).user_point == "5"
        query = "/v1/audit-events?resource=points&sort=desc"
        async with aiohttp.ClientSession() as http:
            for url in (f"{service.url}{query}", f"{gateway.url}/api/points{query}"):
                async with http.get(url, headers=bearer(Role.ADMIN)) as resp:
                    assert resp.status == 200, await resp.text()
                    events = (await resp.json())["data"]
                mine = [e for e in events if e["resource_id"] == user]
                assert [(e["action"], e["after_fields"]["delta"]) for e in mine] == [
                    ("AddUserPoints", 5)
                ]
                async with http.get(url, headers=bearer(Role.PROVIDER)) as resp:
                    assert resp.status == 403, await resp.text()
                async with http.get(url) as resp:
                    assert resp.status == 401, await resp.text()
            async with http.get(f"{gateway.url}/api/points/metrics") as resp:
                assert resp.status == 404, "nothing else of points is routed"
    finally:
        gateway.stop()
        await pool.close()
        service.stop()


async def test_the_process_is_ready_before_users_key_set_and_its_list_waits_for_it(
    migrated_db: Callable[[str], str], tmp_path: Path
) -> None:
    """Its gRPC calls take no token: users away (JWKS_URL unanswered) leaves points ready
    and serving; only the audit list answers 503 until the key set comes."""
    http_port, grpc_port = free_port(), free_port()
    env = {
        "POINTS_DATABASE_URL": migrated_db("points"),
        "POINTS_PORT": str(http_port),
        "POINTS_GRPC_PORT": str(grpc_port),
        "JWKS_URL": f"http://127.0.0.1:{free_port()}/.well-known/jwks.json",  # nobody there
        "DB_POOL_MIN": "1",
        "WORKERS": "1",
    }
    service = ServiceProcess(env, tmp_path / "points.log", name="points")
    pool = ChannelPool(f"127.0.0.1:{grpc_port}", 1)
    try:
        await service.wait_healthy()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{service.url}/ready") as resp:
                assert resp.status == 200, await resp.text()
            async with http.get(
                f"{service.url}/v1/audit-events", headers=bearer(Role.ADMIN)
            ) as resp:
                assert resp.status == 503, await resp.text()
                assert "keys" in (await resp.json())["detail"]
        get = pool.unary(GET, PointReply.parse)
        assert (await get(PointRequest(user_id=str(uuid.uuid4())), timeout=5)).user_point == "0"
    finally:
        await pool.close()
        service.stop()
