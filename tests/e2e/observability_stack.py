"""The live observability stack: the built services, NGINX + its exporter, Debian's database
exporters and prometheus, each a real process on free loopback ports.

A missing prometheus or exporter FAILS the test with its install command.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lib import registry
from tests.e2e.gateway_stack import Exporter, Gateway, answers, require_nginx, wait_until
from tests.servers import Servers
from tools import keys
from tools.deploy import db_exporters, prometheus
from tools.deploy.db_exporters import Server
from tools.local.ports import free_port
from tools.local.service_process import ROOT, ServiceProcess
from tools.packages import sbin
from tools.time_scale import scaled

SCRAPE = 1.0  # s: the test's scrape and evaluation interval on an idle machine, times
# FIXUP_TIME_SCALE when the stack starts: a scrape must answer within one interval, and
# postgres_exporter's answer grows with the databases on its server (a series per database
# and lock mode: 3 MB in 0.26 s idle with 600 of them, as a full run keeps)


def require(binary: str) -> str:
    found = sbin(binary)
    if found is None:
        pytest.fail(f"{binary}: {prometheus.INSTALL_HINT}", pytrace=False)
    return found


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def spawn(name: str, command: list[str], tmp: Path, env: dict[str, str] | None = None) -> Proc:
    log = tmp / f"{name}.log"
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    return Proc(name, proc, log)


@dataclass
class Live:
    prometheus_url: str
    gateway: Gateway
    services: dict[str, ServiceProcess]
    points_grpc: int
    logs: dict[str, Path]  # process -> its captured output (JSON log lines)

    async def query(self, expr: str) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr}) as resp,
        ):
            body: dict[str, Any] = await resp.json()
            return body

    async def targets(self) -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.prometheus_url}/api/v1/targets") as resp,
        ):
            active: list[dict[str, Any]] = (await resp.json())["data"]["activeTargets"]
            return active


def service_env(name: str, dsn: str, port: int, tmp: Path) -> dict[str, str]:
    prefix = name.upper()
    env = {
        f"{prefix}_DATABASE_URL": dsn,
        f"{prefix}_PORT": str(port),
        "WORKERS": "1",
        "REDIS_URL": "",
        "RATE_LIMIT_IP_RATE": "10000",
        "RATE_LIMIT_IP_BURST": "10000",
        "JWT_PUBLIC_KEY_FILE": str(tmp / "keys" / "jwt_public.pem"),
        "JWT_PRIVATE_KEY_FILE": str(tmp / "keys" / "jwt_private.pem"),
        "ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    if name == "departments":  # a pool of one that gives up fast: load makes real 503s
        env |= {"DB_POOL_MIN": "1", "DB_POOL_MAX": "1", "DB_ACQUIRE_TIMEOUT": "0.01"}
        env["PAGE_CACHE_BYTES"] = "0"  # every list reads its page: no kept page spares the pool
    return env


def exporter_targets(servers: Servers) -> Iterator[Server]:
    urls = {"postgres": servers.pg_dsn, "mysqld": servers.mysql_dsn, "redis": servers.redis_url}
    for job in prometheus.EXPORTERS:
        yield Server.from_url(job, urls[job])


@contextlib.asynccontextmanager
async def live_stack(
    tmp: Path, servers: Servers, migrated_db: Callable[[str], str]
) -> AsyncIterator[Live]:
    require_nginx()
    require("prometheus")
    for job in prometheus.EXPORTERS:
        require(db_exporters.BINARIES[job])
    keys.main(["--dir", str(tmp / "keys")])
    procs: list[Proc] = []
    services: dict[str, ServiceProcess] = {}
    targets: dict[str, list[str]] = {}
    grpc_port = free_port()
    gateway: Gateway | None = None
    exporter_proc: Exporter | None = None
    try:
        for svc in [service.name for service in registry.built_services()]:
            port = free_port()
            env = service_env(svc, migrated_db(svc), port, tmp)
            env["POINTS_GRPC_ADDR"] = f"127.0.0.1:{grpc_port}"
            if svc == "points":
                env["POINTS_GRPC_PORT"] = str(grpc_port)
            services[svc] = ServiceProcess(env, tmp / f"{svc}.log", name=svc)
            targets[svc] = [f"127.0.0.1:{port}"]
        for service in services.values():
            await service.wait_healthy()
        down = free_port()  # planned services: NGINX answers 503 for them
        upstreams = {
            s.name: targets.get(s.name, [f"127.0.0.1:{down}"]) for s in registry.gateway_services()
        }
        gateway = await Gateway(tmp, upstreams, tmp / "docs").start()
        exporter_proc = await Exporter(tmp, gateway.access_log, gateway.status_url).start()
        targets["nginx"] = [f"127.0.0.1:{exporter_proc.port}"]
        for server in exporter_targets(servers):
            port = free_port()
            listen = f"127.0.0.1:{port}"
            command, env = db_exporters.command(
                server, require(db_exporters.BINARIES[server.job]), listen, tmp / "secrets"
            )
            procs.append(spawn(server.job, command, tmp, env))
            targets[server.job] = [f"127.0.0.1:{port}"]
        port = free_port()  # no archived servers here: every backup series at 0
        backups = [
            sys.executable,
            "-m",
            "tools.backups.backup_exporter",
            f"--listen=127.0.0.1:{port}",
        ]
        procs.append(spawn("backups", backups, tmp, {"BACKUP_ROOT": str(tmp / "backups")}))
        targets["backups"] = [f"127.0.0.1:{port}"]
        listen = f"127.0.0.1:{free_port()}"
        targets["prometheus"] = [listen]
        conf = tmp / "prometheus.yml"
        conf.write_text(prometheus.local_config(targets, interval=f"{scaled(SCRAPE):g}s"))
        command = prometheus.prometheus_command(conf, tmp / "tsdb", listen)
        procs.append(spawn("prometheus", command, tmp))
        url = f"http://{listen}"
        await wait_until(lambda: answers(f"{url}/-/ready"), "prometheus is ready", scaled(30.0))
        logs = {name: s.log for name, s in services.items()}
        logs["nginx"] = gateway.access_log
        yield Live(url, gateway, services, grpc_port, logs)
    finally:
        for proc in procs:
            proc.stop()
        if exporter_proc is not None:
            exporter_proc.stop()
        if gateway is not None:
            gateway.stop()
        for service in services.values():
            service.stop()


IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
NOT_METRICS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels, strings removed)."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    names = set()
    for match in IDENT.finditer(text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match.group() in NOT_METRICS:
            continue
        names.add(match.group())
    return names


DASHBOARDS = ROOT / "observability" / "grafana" / "dashboards"
# the one service dashboard: every panel selects its series by the `$service` variable
SERVICE_BOARD = "service"


def exported_by(service: registry.Microservice, name: str) -> bool:
    """Whether `service` exports metric `name` of the service dashboard, as its registry
    entry declares: HTTP and page cache series (a REST service), gRPC series (a gRPC
    service), the breaker and outbox gauges (`breakers`, `outbox`), its database server's
    (`engine`); the pool's and the SLO's, every service."""
    if name.startswith("pg_"):
        return service.engine == "postgresql"
    if name.startswith("mysql_"):
        return service.engine == "mysql"
    if name.startswith(("http_", "page_cache_")):
        return service.behind_gateway
    if name.startswith("grpc_"):
        return service.grpc_port is not None
    if name == "circuit_breaker_state":
        return bool(service.breakers)
    if name == "outbox_pending":
        return service.outbox
    return True


def for_service(expr: str, service: registry.Microservice) -> str:
    """A service dashboard expression with its `$service` variable set."""
    return expr.replace("$service", service.name)
