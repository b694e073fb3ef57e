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
import pytest

from tests.e2e.service_process import ROOT, Service
from tests.proxy import TcpProxy, through
from tests.servers import Servers, free_port


@pytest.fixture
async def slow_db(migrated_db: Callable[[str], str]) -> AsyncIterator[tuple[str, TcpProxy]]:
    dsn = migrated_db("departments")
    parts = urlsplit(dsn)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    yield dsn, proxy
    await proxy.stop()


def base_env(dsn: str, **extra: str) -> dict[str, str]:
    return {
        "DEPARTMENTS_DATABASE_URL": dsn,
        "DEPARTMENTS_PORT": str(free_port()),
        "DB_POOL_MIN": "1",
        "RATE_LIMIT_IP_RATE": "1000",
        "RATE_LIMIT_IP_BURST": "1000",
        "REDIS_URL": "",
        "WORKERS": "1",
        **extra,
    }


async def get_status(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        await resp.read()
        return resp.status


async def test_sigterm_lets_in_flight_requests_finish(
    slow_db: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    dsn, proxy = slow_db
    service = Service(base_env(through(dsn, proxy), SHUTDOWN_TIMEOUT="8"), tmp_path / "svc.log")
    try:
        await service.wait_healthy()
        proxy.delay = 0.6  # each database round trip now takes >= 0.6 s: ~1.2 s per list
        started = time.monotonic()
        requests = [
            asyncio.create_task(get_status(f"{service.url}/v1/departments?limit=1"))
            for _ in range(3)
        ]
        await asyncio.sleep(0.3)
        service.proc.send_signal(signal.SIGTERM)
        statuses = await asyncio.gather(*requests)
        assert statuses == [200, 200, 200]
        code = await asyncio.to_thread(service.proc.wait, 10)
        elapsed = time.monotonic() - started
        assert code == 0
        assert 1.0 < elapsed < 8.0, elapsed  # waited for the requests, not for the timeout
        with pytest.raises(aiohttp.ClientConnectorError):
            await get_status(f"{service.url}/health")
    finally:
        service.stop()


async def test_shutdown_timeout_bounds_the_wait(
    slow_db: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    dsn, proxy = slow_db
    service = Service(base_env(through(dsn, proxy), SHUTDOWN_TIMEOUT="1"), tmp_path / "svc.log")
    try:
        await service.wait_healthy()
        proxy.delay = 5.0  # far slower than the shutdown timeout
        request = asyncio.create_task(get_status(f"{service.url}/v1/departments?limit=1"))
        await asyncio.sleep(1.0)
        assert not request.done(), "the request must be in flight when SIGTERM arrives"
        started = time.monotonic()
        service.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(service.proc.wait, 10)
        assert time.monotonic() - started < 4.0
        try:
            outcome: int | str = await request
        except aiohttp.ClientError as exc:
            outcome = type(exc).__name__
        assert outcome != 200, "a request cut by the timeout cannot have succeeded"
        print("cut request ->", outcome)
    finally:
        service.stop()


async def test_workers_share_the_port_and_sum_their_metrics(
    migrated_db: Callable[[str], str], servers: Servers, tmp_path: Path
) -> None:
    env = base_env(migrated_db("departments"), WORKERS="2", REDIS_URL=servers.redis_url)
    service = Service(env, tmp_path / "svc.log")
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
        pids = {
            line for line in service.log.read_text().splitlines() if '"event":"request"' in line
        }
        assert pids  # both workers log JSON request lines
    finally:
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
    full = {**os.environ, **base_env("postgresql://postgres@127.0.0.1:5432/x"), **env}
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
