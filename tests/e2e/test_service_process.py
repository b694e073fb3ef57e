"""A service as a real process: graceful shutdown under SIGTERM, WORKERS=N, bad settings."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import psutil
import pytest

from tests.e2e.gateway_stack import departments_env
from tests.proxy import TcpProxy, through
from tests.servers import Servers
from tools.local.service_process import PROCESS_MARGIN, ROOT, ServiceProcess, port_open


@pytest.fixture
async def slow_db(migrated_db: Callable[[str], str]) -> AsyncIterator[tuple[str, TcpProxy]]:
    dsn = migrated_db("departments")
    parts = urlsplit(dsn)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    yield dsn, proxy
    await proxy.stop()


async def get_status(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        await resp.read()
        return resp.status


async def test_sigterm_lets_in_flight_requests_finish(
    slow_db: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    dsn, proxy = slow_db
    # SHUTDOWN_TIMEOUT: far longer than the exit may take, to tell them apart
    timeout = 3 * PROCESS_MARGIN
    # PAGE_CACHE_BYTES=0: three handlers each hold a connection (with kept pages on, the
    # three GETs would first share one stamp read, ADR 0056)
    env = departments_env(
        through(dsn, proxy), SHUTDOWN_TIMEOUT=str(timeout), DB_POOL_MIN="3", PAGE_CACHE_BYTES="0"
    )
    service = ServiceProcess(env, tmp_path / "svc.log")
    try:
        await service.wait_healthy()
        proxy.hold()  # the database's answers wait at the proxy until release()
        url = f"{service.url}/v1/departments?limit=1"
        requests = [asyncio.create_task(get_status(url)) for _ in range(3)]
        await asyncio.wait_for(proxy.held(3), PROCESS_MARGIN)  # all three in their handlers
        signalled = time.monotonic()
        service.proc.send_signal(signal.SIGTERM)
        await service.wait_not_listening(service.port, PROCESS_MARGIN)
        assert not any(r.done() for r in requests), "SIGTERM must find them in flight"
        proxy.release()
        statuses = await asyncio.wait_for(asyncio.gather(*requests), PROCESS_MARGIN)
        assert statuses == [200, 200, 200]
        code = await asyncio.to_thread(service.proc.wait, timeout + PROCESS_MARGIN)
        exited_after = time.monotonic() - signalled
        assert code == 0, service.log.read_text()
        # it left once the requests were done, not when the shutdown timeout ran out
        assert exited_after < timeout - PROCESS_MARGIN, exited_after
    finally:
        proxy.release()
        service.stop()


async def test_shutdown_timeout_bounds_the_wait(
    slow_db: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    dsn, proxy = slow_db
    timeout = 2.0  # SHUTDOWN_TIMEOUT
    env = departments_env(through(dsn, proxy), SHUTDOWN_TIMEOUT=str(timeout))
    service = ServiceProcess(env, tmp_path / "svc.log")
    try:
        await service.wait_healthy()
        proxy.hold()  # not released before the timeout: the request outlasts it
        request = asyncio.create_task(get_status(f"{service.url}/v1/departments?limit=1"))
        await asyncio.wait_for(proxy.held(1), PROCESS_MARGIN)
        signalled = time.monotonic()
        service.proc.send_signal(signal.SIGTERM)
        try:
            outcome: int | str = await asyncio.wait_for(request, 2 * timeout + PROCESS_MARGIN)
        except aiohttp.ClientError as exc:
            outcome = type(exc).__name__
        cut_after = time.monotonic() - signalled
        assert outcome != 200, "a request cut by the timeout cannot have succeeded"
        # aiohttp waits `timeout` for the handler, cancels it, then waits up to `timeout`
        # again for it to unwind (it cannot here: its database answer is held) before closing
        assert timeout <= cut_after < 2 * timeout + PROCESS_MARGIN, cut_after
        proxy.release()  # the database answers again: closing the pool takes no grace period
        code = await asyncio.to_thread(service.proc.wait, PROCESS_MARGIN)
        assert code == 0, service.log.read_text()
    finally:
        proxy.release()
        service.stop()


def metric_dirs(tmp: Path) -> list[Path]:
    """The master's directory for its workers' metric files (lib/runner.py), under TMPDIR."""
    return list(tmp.glob("fixup-departments-metrics-*"))


async def test_workers_share_the_port_and_sum_their_metrics(
    migrated_db: Callable[[str], str], servers: Servers, tmp_path: Path
) -> None:
    timeout = 2.0  # SHUTDOWN_TIMEOUT
    env = departments_env(
        migrated_db("departments"),
        WORKERS="2",
        REDIS_URL=servers.redis_url,
        SHUTDOWN_TIMEOUT=str(timeout),
        TMPDIR=str(tmp_path),  # where the master keeps the workers' metric files
    )
    service = ServiceProcess(env, tmp_path / "svc.log")
    try:
        await service.wait_healthy()
        for _ in range(20):  # new connection each: the kernel spreads them over the workers
            assert await get_status(f"{service.url}/v1/departments?limit=1") == 200
        async with aiohttp.ClientSession() as http, http.get(f"{service.url}/metrics") as resp:
            text = await resp.text()
        counts = re.findall(
            r'http_requests_total\{method="GET",route="/v1/departments",service="departments",'
            r'status="200"\} (\d+(?:\.\d+)?)',
            text,
        )
        assert counts, text[:2000]
        assert sum(float(c) for c in counts) == 20.0
        logged = [
            line
            for line in service.log.read_text().splitlines()
            if '"event":"request"' in line and "/v1/departments" in line
        ]
        assert len(logged) == 20  # each request's JSON line, whichever worker served it
        assert len(metric_dirs(tmp_path)) == 1
        service.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(service.proc.wait, timeout + PROCESS_MARGIN) == 0
        assert not metric_dirs(tmp_path), "the workers' metric files outlived the service"
    finally:
        service.stop()


async def test_workers_end_when_their_master_is_killed(
    migrated_db: Callable[[str], str], servers: Servers, tmp_path: Path
) -> None:
    timeout = 2.0  # SHUTDOWN_TIMEOUT: a worker drains for at most this, then exits
    env = departments_env(
        migrated_db("departments"),
        WORKERS="2",
        REDIS_URL=servers.redis_url,
        SHUTDOWN_TIMEOUT=str(timeout),
    )
    service = ServiceProcess(env, tmp_path / "svc.log")
    workers: list[psutil.Process] = []
    try:
        await service.wait_healthy()
        workers += [
            child
            for child in psutil.Process(service.proc.pid).children()
            if "multiprocessing" in " ".join(child.cmdline())
            and "resource_tracker" not in " ".join(child.cmdline())
        ]
        assert len(workers) == 2, [w.cmdline() for w in workers]
        service.proc.kill()  # SIGKILL: the master gets no chance to stop them itself
        service.proc.wait(PROCESS_MARGIN)
        _, alive = await asyncio.to_thread(psutil.wait_procs, workers, timeout + PROCESS_MARGIN)
        assert not alive, f"workers still serving without their master: {alive}"
        assert not await port_open(service.port)
    finally:
        for worker in workers:
            if worker.is_running():
                worker.kill()
        service.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORKERS": "2", "REDIS_URL": ""}, "WORKERS > 1 needs REDIS_URL"),
        ({"DEPARTMENTS_PORT": "http"}, "config: DEPARTMENTS_PORT:"),
        ({"DEPARTMENTS_DATABASE_URL": "sqlite:///x"}, "config: DEPARTMENTS_DATABASE_URL:"),
    ],
)
def test_bad_settings_stop_the_service_naming_the_variable(
    env: dict[str, str], message: str, tmp_path: Path
) -> None:
    full = {**os.environ, **departments_env("postgresql://postgres@127.0.0.1:5432/x"), **env}
    proc = subprocess.run(
        [sys.executable, "-m", "services.departments"],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
