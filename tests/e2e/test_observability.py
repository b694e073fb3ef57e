"""Prometheus, its rules and the Grafana dashboards against the running services.

promtool checks the config and runs the rules' unit tests; a live stack (services, NGINX,
exporters, Debian's prometheus scraping every 1 s) gets a short bounded load, then every
target must be up and every rule and panel expression must parse and name only metrics
that really have data (every series exists from start-up: test_metrics_from_startup.py).
cAdvisor runs in Compose only: its metrics (container_*) are checked by name only.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from lib import registry
from lib.grpc.client import ChannelPool
from lib.pb.point import PointReply, PointRequest
from tests.e2e.gateway_stack import wait_until
from tests.e2e.observability_stack import (
    DASHBOARDS,
    SCRAPE,
    SERVICE_BOARD,
    Live,
    exported_by,
    for_service,
    live_stack,
    metric_names,
    require,
)
from tests.servers import Servers
from tools.deploy import prometheus
from tools.deploy.db_exporters import REPLICA_ONLY
from tools.time_scale import scaled

RULE_FILES = sorted(prometheus.RULES.glob("*.yml"))  # fixup.yml, slo.yml
RULE_TESTS = sorted((prometheus.HERE / "tests").glob("*.yml"))
COMPOSE_ONLY_PREFIX = "container_"  # cAdvisor
# the dashboards whose every panel must return data here (the marketplace sums every
# service's domain counters); the service dashboard's panels must, for every service that
# exports their series (`exported_by`), with `$service` set to it
MUST_RETURN_DATA = ("overview", "databases", "marketplace")
LOAD_SECONDS = 10.0  # upper bound of the load phase


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require("promtool"), *args],
        capture_output=True,
        text=True,
        timeout=scaled(60.0),
        check=False,
    )


def rule_exprs() -> dict[str, str]:
    """alert name, or recorded name and labels -> expression, of every rule file."""
    out = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                labels = ",".join(f"{k}={v}" for k, v in rule.get("labels", {}).items())
                out[rule.get("alert") or f"{rule['record']}{{{labels}}}"] = rule["expr"]
    return out


def panel_exprs() -> dict[str, list[tuple[str, str]]]:
    """dashboard -> (panel title, expr) of every committed dashboard JSON."""
    out: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        out[path.stem] = [
            (panel["title"], target["expr"])
            for panel in board["panels"]
            for target in panel["targets"]
        ]
    return out


def test_promtool_checks_config_and_rule_unit_tests(tmp_path: Path) -> None:
    local = tmp_path / "prometheus.yml"
    local.write_text(prometheus.local_config(prometheus.local_targets()))
    for conf in (prometheus.COMPOSE_FILE, local):
        done = promtool("check", "config", str(conf))
        assert done.returncode == 0, done.stdout + done.stderr
    done = promtool("check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(RULE_FILES)
    assert sum(map(int, re.findall(r"SUCCESS: (\d+) rules found", done.stdout))) == len(
        rule_exprs()
    )
    # every alert fires and stays silent as its tests say (tests/unit/test_alerts.py checks
    # that every alert has such tests)
    done = promtool("test", "rules", *map(str, RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(RULE_TESTS)


async def load(live: Live) -> None:
    """Requests through NGINX (200s, 404s, 503s of a down upstream, 503s of departments'
    pool of one under concurrency) and gRPC calls to points, until a pool 503 was seen."""
    gateway = live.gateway.url
    pool = ChannelPool(f"127.0.0.1:{live.points_grpc}", 1)
    get = pool.unary("/point.PointServer/GetUserPoints", PointReply.parse)
    deadline = time.monotonic() + LOAD_SECONDS
    statuses: list[int] = []

    async def one(http: aiohttp.ClientSession, path: str) -> None:
        async with http.get(f"{gateway}{path}") as resp:
            await resp.read()
            statuses.append(resp.status)

    async with aiohttp.ClientSession() as http:
        for path in ("/api/departments/v1/departments/nope", "/api/chat/v1/conversations"):
            await one(http, path)
        await one(http, "/api/users/v1/users")
        while time.monotonic() < deadline:
            await asyncio.gather(*(one(http, "/api/departments/v1/departments") for _ in range(30)))
            await get(PointRequest(user_id=str(uuid.uuid4())), timeout=5)
            if 503 in statuses[3:] and 200 in statuses:
                break
    await pool.close()
    assert 200 in statuses
    assert 503 in statuses[3:], f"no pool 503 within {LOAD_SECONDS}s"


async def has_data(live: Live, name: str) -> bool:
    body = await live.query(f'count({{__name__="{name}"}})')
    return body["status"] == "success" and bool(body["data"]["result"])


async def test_live_prometheus_scrapes_every_target_and_every_expression_has_data(
    tmp_path: Path, servers: Servers, migrated_db: Callable[[str], str]
) -> None:
    async with live_stack(tmp_path, servers, migrated_db) as live:
        await load(live)
        expected_jobs = {*prometheus.local_targets()}

        seen_up: set[str] = set()
        last_errors: dict[str, str] = {}

        async def all_up() -> bool:
            for target in await live.targets():
                job = target["labels"]["job"]
                if target["health"] == "up":
                    seen_up.add(job)
                else:
                    last_errors[job] = target.get("lastError", "")
            return seen_up >= expected_jobs

        # an upper bound, not a pause: under load a scrape can miss its 1-interval timeout,
        # so a target counts once one of its scrapes succeeded, not all on the same round
        try:
            await wait_until(all_up, "every target up", scaled(60 * SCRAPE))
        except AssertionError:
            down = {job: last_errors.get(job, "") for job in sorted(expected_jobs - seen_up)}
            raise AssertionError(f"never scraped: {down}") from None
        exprs: dict[str, str] = {f"rule {k}": v for k, v in rule_exprs().items()}
        for board, panels in panel_exprs().items():
            exprs |= {f"{board}: {title} [{e}]": e for title, e in panels}
        names = {n for e in exprs.values() for n in metric_names(e)}
        wanted = {
            n for n in names if not n.startswith(COMPOSE_ONLY_PREFIX) and n not in REPLICA_ONLY
        }

        async def every_metric() -> bool:
            return all([await has_data(live, n) for n in sorted(wanted)])

        try:
            await wait_until(every_metric, "every named metric has data", scaled(10 * SCRAPE))
        except AssertionError:
            missing = [n for n in sorted(wanted) if not await has_data(live, n)]
            raise AssertionError(f"metrics nobody exports: {missing}") from None
        assert "container_cpu_usage_seconds_total" in names  # the containers dashboard

        async def panels_return_data() -> bool:
            return not await empty_panels(live)

        bad = [k for k, e in exprs.items() if (await live.query(e))["status"] != "success"]
        assert not bad, f"expressions Prometheus refuses: {bad}"
        try:
            await wait_until(panels_return_data, "every panel returns data", scaled(10 * SCRAPE))
        except AssertionError:
            raise AssertionError(f"panels without data: {await empty_panels(live)}") from None


def data_panels() -> list[tuple[str, str]]:
    """(where, expr) of every panel that must return data on the live stack."""
    out = []
    for board, panels in panel_exprs().items():
        for title, expr in panels:
            if metric_names(expr) <= REPLICA_ONLY:  # a single server has no standby
                continue
            if board in MUST_RETURN_DATA:
                out.append((f"{board}: {title}", expr))
            elif board == SERVICE_BOARD:
                out += [
                    (f"{board} {svc.name}: {title}", for_service(expr, svc))
                    for svc in registry.built_services()
                    if all(exported_by(svc, n) for n in metric_names(expr))
                ]
    return out


async def empty_panels(live: Live) -> list[str]:
    empty = []
    for where, expr in data_panels():
        result: list[Any] = (await live.query(expr))["data"]["result"]
        if not result:
            empty.append(f"{where}: {expr}")
    return empty
