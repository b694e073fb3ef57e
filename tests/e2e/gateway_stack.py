"""NGINX (tools/deploy/nginx.py) and the access-log exporter as real processes on free loopback
ports.

Missing nginx or chromium FAILS the test with how to install it; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from lib import registry
from tests.integration.auth_support import KEYS
from tests.servers import db_bounds_env
from tools.deploy import nginx as nginx_tool
from tools.local import seed
from tools.local.dbadmin import psycopg_dsn
from tools.local.ports import free_port
from tools.local.service_process import PROCESS_MARGIN, ROOT, ServiceProcess
from tools.time_scale import scaled

NGINX_HINT = (
    "nginx is not installed; the gateway tests run the real binary: "
    "apt-get install -y nginx (Debian/Ubuntu, as root)"
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def require_nginx() -> str:
    binary = nginx_tool.nginx_binary()
    if binary is None:
        pytest.fail(NGINX_HINT, pytrace=False)
    return binary


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str, seconds: float = PROCESS_MARGIN
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {seconds:.0f} s: {what}")


async def answers(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            await resp.read()
            return resp.status == 200
    except aiohttp.ClientError:
        return False


class Gateway:
    """`python -m tools.deploy.nginx run ...` (which execs nginx: the pid is nginx's master)."""

    def __init__(self, tmp: Path, upstreams: dict[str, list[str]], docs_root: Path) -> None:
        require_nginx()
        self.port, self.status_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.status_url = f"http://127.0.0.1:{self.status_port}/nginx_status"
        self.runtime = tmp / "nginx"
        self.access_log = tmp / "log" / "access.log"
        self.error_log = tmp / "log" / "error.log"
        self.args = [
            "--listen",
            f"127.0.0.1:{self.port}",
            "--status-listen",
            f"127.0.0.1:{self.status_port}",
            "--runtime",
            str(self.runtime),
            "--access-log",
            str(self.access_log),
            "--error-log",
            str(self.error_log),
            "--docs-root",
            str(docs_root),
            "--workers",
            "1",
        ]
        for service, addresses in upstreams.items():
            self.args += ["--upstream", f"{service}={','.join(addresses)}"]
        self.output = tmp / "nginx.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def tool(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tools.deploy.nginx", command, *self.args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=scaled(60.0),  # a config written and checked: seconds at load 3
            check=False,
        )

    def spawn(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.deploy.nginx", "run", *self.args],
            cwd=ROOT,
            stdout=self.output.open("w"),
            stderr=subprocess.STDOUT,
        )

    async def start(self) -> Gateway:
        self.spawn()

        async def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"nginx exited: {self.output.read_text()}")
            return await answers(self.status_url)

        await wait_until(up, f"nginx answers on {self.status_url}")
        return self

    def reopen_logs(self) -> None:
        """What logrotate's postrotate does: USR1 -> nginx reopens its log files."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGUSR1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Exporter:
    def __init__(self, tmp: Path, access_log: Path, stub_status_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self.output = tmp / "exporter.out"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "observability.nginx_exporter",
                "--log",
                str(access_log),
                "--stub-status",
                stub_status_url,
                "--port",
                str(self.port),
                "--poll-interval",
                "0.05",
            ],
            cwd=ROOT,
            stdout=self.output.open("w"),
            stderr=subprocess.STDOUT,
        )

    async def start(self) -> Exporter:
        async def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"exporter exited: {self.output.read_text()}")
            return await answers(f"http://127.0.0.1:{self.port}/health")

        await wait_until(up, "the exporter answers")
        return self

    async def samples(self) -> Samples:
        async with aiohttp.ClientSession() as http, http.get(self.url) as resp:
            assert resp.status == 200
            text = await resp.text()
        found: Samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_by_path(samples: Samples) -> dict[tuple[str, str, str], float]:
    """(path, method, status_code) -> nginx_http_requests_total."""
    out: dict[tuple[str, str, str], float] = {}
    for (name, labels), count in samples.items():
        if name == "nginx_http_requests_total":
            d = dict(labels)
            out[(d["path"], d["method"], d["status_code"])] = count
    return out


def delta(
    after: dict[tuple[str, str, str], float], before: dict[tuple[str, str, str], float]
) -> dict[tuple[str, str, str], float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


# --- the whole stack: departments + an echo upstream + nginx + the exporter --------------


class Echo:
    """A stand-in upstream (for catalog and chat): answers what it received, WebSocket too."""

    def __init__(self) -> None:
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    @staticmethod
    async def echo(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/ws"):
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await ws.send_str(f"echo:{message.data}")
            return ws
        return web.json_response(
            {
                "path": request.path,
                "query": request.rel_url.raw_query_string,
                "headers": {k.lower(): v for k, v in request.headers.items()},
            }
        )

    async def start(self) -> Echo:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.echo)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@dataclass
class Stack:
    service: ServiceProcess
    echo: Echo
    gateway: Gateway
    exporter: Exporter
    department_ids: list[str]
    down_port: int  # users and orders point here: nothing listens


DEPARTMENTS = [
    ("Human Resources", "123 Main St, Springfield"),
    ("Finance", "456 Elm St, Springfield"),
    ("IT Support", "789 Oak St, Springfield"),
]


def seed_departments(dsn: str) -> list[str]:
    with psycopg.connect(psycopg_dsn(dsn)) as conn:
        rows = [
            conn.execute(
                "INSERT INTO departments (name, address) VALUES (%s, %s) RETURNING id::text",
                (name, address),
            ).fetchone()
            for name, address in DEPARTMENTS
        ]
    return [row[0] for row in rows if row is not None]


def departments_env(dsn: str, **extra: str) -> dict[str, str]:
    """The departments service on a free port: one worker, no Redis, generous limits."""
    return {
        "DEPARTMENTS_DATABASE_URL": dsn,
        "DEPARTMENTS_PORT": str(free_port()),
        "DB_POOL_MIN": "1",
        "RATE_LIMIT_IP_RATE": "1000",
        "RATE_LIMIT_IP_BURST": "1000",
        "REDIS_URL": "",
        "WORKERS": "1",
        **db_bounds_env(),
        **extra,
    }


@contextlib.asynccontextmanager
async def running_stack(
    tmp: Path, dsn: str, docs_root: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[Stack]:
    require_nginx()
    ids = seed_departments(dsn)
    service = ServiceProcess(departments_env(dsn, **(extra_env or {})), tmp / "departments.log")
    echo = await Echo().start()
    down = free_port()
    gateway = Gateway(
        tmp,
        {  # every REST service of the registry down but these three
            **{s.name: [f"127.0.0.1:{down}"] for s in registry.gateway_services()},
            "departments": [f"127.0.0.1:{service.port}"],
            "catalog": [f"127.0.0.1:{echo.port}"],
            "chat": [f"127.0.0.1:{echo.port}", f"127.0.0.1:{down}"],
        },
        docs_root,
    )
    exporter: Exporter | None = None
    try:
        await service.wait_healthy()
        await gateway.start()
        exporter = await Exporter(tmp, gateway.access_log, gateway.status_url).start()
        yield Stack(service, echo, gateway, exporter, ids, down)
    finally:
        if exporter is not None:
            exporter.stop()
        gateway.stop()
        service.stop()
        await echo.stop()


@contextlib.asynccontextmanager
async def users_and_points_behind_nginx(
    users_dsn: str, points_dsn: str, tmp: Path, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[Gateway, ServiceProcess, ServiceProcess]]:
    """The seed's users and points as real processes (users -> points over gRPC), users
    behind a real NGINX; `env` is added to both (tracing's OTEL_* variables, say)."""
    seed.seed_users(users_dsn)
    seed.seed_points(points_dsn)
    grpc_port = free_port()
    common = {"WORKERS": "1", "REDIS_URL": "", "RATE_LIMIT_IP_RATE": "1000", **(env or {})}
    points = ServiceProcess(
        {**common, "POINTS_DATABASE_URL": points_dsn, "POINTS_PORT": str(free_port()),
         "POINTS_GRPC_PORT": str(grpc_port)},
        tmp / "points.log",
        name="points",
    )  # fmt: skip
    users = ServiceProcess(
        {**common, "USERS_DATABASE_URL": users_dsn, "USERS_PORT": str(free_port()),
         "POINTS_GRPC_ADDR": f"127.0.0.1:{grpc_port}", "JWT_PUBLIC_KEY": KEYS[1]},
        tmp / "users.log",
        name="users",
    )  # fmt: skip
    docs = tmp / "docs"
    docs.mkdir()
    gateway = Gateway(tmp, {"users": [f"127.0.0.1:{users.port}"]}, docs)
    try:
        await points.wait_healthy()
        await users.wait_healthy()
        await gateway.start()
        yield gateway, users, points
    finally:
        gateway.stop()
        users.stop()
        points.stop()
