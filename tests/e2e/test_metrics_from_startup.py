"""Every series a dashboard or an alert rule names exists from start-up (issue 27.7).

A series that only appears with its first event shows "No data" instead of 0 on its
panel, and a `rate()` alert cannot fire on that first event (rate needs two samples).
Here every built service of lib/registry.py, NGINX and the access-log exporter are
started as real processes and their /metrics read as the very first request each gets
(not even /health before it), and every metric name of every committed dashboard and of
every rule must be there:
- the service dashboard (`service`, one for all through its `$service` variable): each
  metric on the /metrics of every service that exports it by its registry entry
  (`exported_by`), with its `service` label (gRPC series carry none: Prometheus adds `job`);
- the rules, the overview and the marketplace: the services' metrics on the /metrics of
  every service whose dashboard names them too (the per-service ones), else on some
  service; the gateway's (`nginx_*`) on the exporter's /metrics.
Not checked here, with the reason: `up` (Prometheus makes it per target), the series of
recording rules (`slo:...`: Prometheus records them from the rules), the database
and container exporters' series (`pg_`, `mysql_`, `redis_`, `container_`: third-party
exporters that export their gauges from their first scrape; tests/e2e/test_observability.py
queries them in a live Prometheus), and the backup exporter's (`fixup_backup_`, `fixup_wal_`:
tests/integration/test_backup_restore.py reads them before any backup).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lib import registry
from tests.e2e.gateway_stack import Exporter, Gateway
from tests.e2e.observability_stack import SERVICE_BOARD, exported_by, metric_names, service_env
from tests.e2e.test_observability import panel_exprs, rule_exprs
from tests.servers import Servers
from tools import keys
from tools.local.ports import free_port
from tools.local.service_process import ServiceProcess, port_open

THIRD_PARTY = ("pg_", "mysql_", "redis_", "container_")  # their own exporters, see above
# the backup exporter's (tools/backups/backup_exporter.py): tests/integration/test_backup_restore.py
# reads each from a run with no backup yet
BACKUP_EXPORTER = ("fixup_backup_", "fixup_wal_")
SYNTHETIC = {"up"}  # Prometheus's, per target
HISTOGRAM_PARTS = ("_bucket", "_count", "_sum")

Labels = frozenset[tuple[str, str]]


@dataclass
class Exposition:
    """The samples of one /metrics: name -> the label sets it has."""

    samples: dict[str, set[Labels]]

    def has(self, name: str, **labels: str) -> bool:
        """A sample of `name` whose labels include `labels` (those it has at all)."""
        for label_set in self.samples.get(name, set()):
            own = dict(label_set)
            if all(own.get(k, v) == v for k, v in labels.items()):
                return True
        return False


async def read_metrics(url: str) -> Exposition:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200, f"{url}: {resp.status}"
        text = await resp.text()
    samples: dict[str, set[Labels]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).add(frozenset(sample.labels.items()))
    return Exposition(samples)


def wanted(names: set[str]) -> set[str]:
    """The names this test checks, a histogram's `_bucket` with its `_count` and `_sum`."""
    out = set()
    for name in names:
        if name in SYNTHETIC or name.startswith(THIRD_PARTY + BACKUP_EXPORTER) or ":" in name:
            continue
        out.add(name)
        if name.endswith("_bucket"):
            base = name.removesuffix("_bucket")
            out |= {base + part for part in HISTOGRAM_PARTS}
    return out


async def first_metrics(service: ServiceProcess, seconds: float = 20.0) -> Exposition:
    """The service's /metrics, asked until it answers: its first request."""
    deadline = time.monotonic() + seconds
    while not await port_open(service.port):
        if service.proc.poll() is not None:
            raise AssertionError(f"{service.name} exited: {service.log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{service.name} not listening in {seconds}s")
        await asyncio.sleep(0.05)
    return await read_metrics(f"{service.url}/metrics")


@dataclass
class Fresh:
    services: dict[str, Exposition]
    exporter: Exposition


@pytest.fixture
async def fresh(
    tmp_path: Path, servers: Servers, migrated_db: Callable[[str], str]
) -> AsyncIterator[Fresh]:
    """Every built service, NGINX and its exporter, started; the first answer of each
    service's /metrics is what is checked (a service listens once it has started)."""
    keys.main(["--dir", str(tmp_path / "keys")])
    grpc_port = free_port()
    started: dict[str, ServiceProcess] = {}
    gateway: Gateway | None = None
    exporter: Exporter | None = None
    try:
        for svc in registry.built_services():
            env = service_env(svc.name, migrated_db(svc.name), free_port(), tmp_path)
            env |= {
                "REDIS_URL": servers.redis_url,  # chat's fan-out, the shared limits
                "POINTS_GRPC_ADDR": f"127.0.0.1:{grpc_port}",
            }
            if svc.name == "points":
                env["POINTS_GRPC_PORT"] = str(grpc_port)
            started[svc.name] = ServiceProcess(env, tmp_path / f"{svc.name}.log", name=svc.name)
        expositions = {name: await first_metrics(service) for name, service in started.items()}
        upstreams = {
            s.name: [f"127.0.0.1:{started[s.name].port}"] if s.name in started else []
            for s in registry.gateway_services()
        }
        gateway = await Gateway(tmp_path, upstreams, tmp_path / "docs").start()
        exporter = await Exporter(tmp_path, gateway.access_log, gateway.status_url).start()
        yield Fresh(expositions, await read_metrics(exporter.url))
    finally:
        if exporter is not None:
            exporter.stop()
        if gateway is not None:
            gateway.stop()
        for service in started.values():
            service.stop()


async def test_every_series_a_dashboard_or_rule_names_exists_from_startup(fresh: Fresh) -> None:
    boards = panel_exprs()
    missing: list[str] = []
    per_service: dict[str, set[str]] = {}  # metric -> the services that export it
    names = wanted({n for _, e in boards[SERVICE_BOARD] for n in metric_names(e)})
    for name in sorted(names):
        exporting = [svc for svc in registry.built_services() if exported_by(svc, name)]
        assert exporting, f"{name} of the service dashboard: no service exports it"
        for svc in exporting:
            per_service.setdefault(name, set()).add(svc.name)
            if not fresh.services[svc.name].has(name, service=svc.name):
                missing.append(f"{name}{{service={svc.name!r}}} (the service dashboard)")
    shared = {f"rule {alert}": expr for alert, expr in rule_exprs().items()}
    for board in ("overview", "marketplace"):
        shared |= {f"{board}: {title}": expr for title, expr in boards[board]}
    for where, expr in sorted(shared.items()):
        for name in sorted(wanted(metric_names(expr))):
            if name.startswith("nginx_"):
                if not fresh.exporter.has(name):
                    missing.append(f"{name} on the exporter ({where})")
            elif name in per_service:
                missing += [
                    f"{name}{{service={svc!r}}} ({where})"
                    for svc in sorted(per_service[name])
                    if not fresh.services[svc].has(name, service=svc)
                ]
            elif not any(e.has(name) for e in fresh.services.values()):
                missing.append(f"{name} on no service ({where})")
    assert not missing, "absent on a freshly started stack:\n" + "\n".join(sorted(set(missing)))


async def test_every_breaker_of_the_registry_is_exported_from_startup(fresh: Fresh) -> None:
    """circuit_breaker_state{dependency} of each service is exactly its registry entry's
    `breakers`: none missing (a panel without it), none unlisted (a registry that lies)."""
    for svc in registry.built_services():
        exported = {
            dict(labels)["dependency"]
            for labels in fresh.services[svc.name].samples.get("circuit_breaker_state", set())
        }
        assert exported == set(svc.breakers), svc.name
        has_outbox = fresh.services[svc.name].has("outbox_pending", service=svc.name)
        assert has_outbox == svc.outbox, svc.name
