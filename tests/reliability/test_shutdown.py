"""SIGTERM under load: in-flight requests complete, the port closes, the process exits 0
within SHUTDOWN_TIMEOUT, and its log has no error line. HTTP (departments) and gRPC
(points)."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import grpc

from lib.auth.principal import Role
from lib.grpc.client import ChannelPool
from lib.pb.point import PointReply, PointRequest
from tests.e2e.service_process import PROCESS_MARGIN, Service
from tests.reliability import figures
from tests.reliability.stack import bearer, common_env, points_env, start

SHUTDOWN_TIMEOUT = 10.0
CLIENTS = 8


async def load_then_sigterm(
    service: Service, port: int, call: Callable[[], Awaitable[str]]
) -> tuple[Counter[str], float]:
    """CLIENTS loops of `call` (returns an outcome label, 'ok' for success); SIGTERM once
    100 have succeeded; the loops stop at their first failure after the signal."""
    outcomes: Counter[str] = Counter()
    enough = asyncio.Event()
    signalled = asyncio.Event()

    async def client() -> None:
        while True:
            outcome = await call()
            if outcome != "ok" and not signalled.is_set():
                outcomes[f"before SIGTERM: {outcome}"] += 1
            outcomes[outcome] += 1
            if outcomes["ok"] >= 100:
                enough.set()
            if outcome != "ok" and signalled.is_set():
                return

    clients = [asyncio.create_task(client()) for _ in range(CLIENTS)]
    await asyncio.wait_for(enough.wait(), PROCESS_MARGIN)
    began = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    signalled.set()
    await service.wait_not_listening(port, PROCESS_MARGIN)
    await asyncio.wait_for(asyncio.gather(*clients), SHUTDOWN_TIMEOUT + PROCESS_MARGIN)
    code = await asyncio.to_thread(service.proc.wait, SHUTDOWN_TIMEOUT + PROCESS_MARGIN)
    took = time.monotonic() - began
    assert code == 0, service.log.read_text()[-3000:]
    assert took < SHUTDOWN_TIMEOUT + PROCESS_MARGIN, took
    errors = [line for line in service.log.read_text().splitlines() if '"level":"error"' in line]
    assert errors == [], errors[:3]
    assert not [k for k in outcomes if k.startswith("before SIGTERM")], outcomes
    return outcomes, took


async def test_sigterm_under_http_write_load(departments_dsn: str, tmp_path: Path) -> None:
    env = common_env("departments", departments_dsn, SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT))
    service = await start("departments", env, tmp_path / "svc.log")
    headers = bearer(Role.ADMIN)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SHUTDOWN_TIMEOUT))

    async def create() -> str:
        body = {"name": f"s-{uuid.uuid4().hex}", "address": "2 Drain St"}
        try:
            async with http.post(f"{service.url}/v1/departments", json=body, headers=headers) as r:
                await r.read()
                return "ok" if r.status == 201 else f"HTTP {r.status}"
        except aiohttp.ClientConnectionError:
            return "connection refused or closed"

    try:
        outcomes, took = await load_then_sigterm(service, service.port, create)
    finally:
        await http.close()
        service.stop()
    # every answer that arrived was a success: nothing in flight was cut or failed
    assert {k for k in outcomes if k.startswith("HTTP")} == set(), outcomes
    figures.add("SIGTERM under load survived", 1)
    print(f"http SIGTERM: {dict(outcomes)}, exit after {took:.2f}s")


async def test_sigterm_under_grpc_load(points_dsn: str, tmp_path: Path) -> None:
    env = points_env(points_dsn, SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT))
    service = await start("points", env, tmp_path / "points.log")
    grpc_port = int(env["POINTS_GRPC_PORT"])
    pool = ChannelPool(f"127.0.0.1:{grpc_port}", 2)
    get = pool.unary("/point.PointServer/GetUserPoints", PointReply.parse)

    async def call() -> str:
        try:
            await get(PointRequest(user_id=str(uuid.uuid4())), timeout=SHUTDOWN_TIMEOUT)
            return "ok"
        except grpc.aio.AioRpcError as exc:
            return f"gRPC {exc.code().name}"

    try:
        outcomes, took = await load_then_sigterm(service, grpc_port, call)
    finally:
        await pool.close()
        service.stop()
    # after the signal a new call is refused: UNAVAILABLE, or CANCELLED when it reached a
    # connection of the stopping server (grpc core's answer; the call never ran) ...
    assert set(outcomes) <= {"ok", "gRPC UNAVAILABLE", "gRPC CANCELLED"}, outcomes
    # ... and every call the server started finished OK
    ran = [line for line in service.log.read_text().splitlines() if '"event":"grpc"' in line]
    assert len(ran) >= outcomes["ok"]
    assert all('"code":"OK"' in line for line in ran), [x for x in ran if '"OK"' not in x][:3]
    figures.add("SIGTERM under load survived", 1)
    print(f"grpc SIGTERM: {dict(outcomes)}, exit after {took:.2f}s")
