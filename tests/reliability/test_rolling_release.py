"""A release rolling under traffic through a real NGINX (ADR 0022), bounded: two replicas
of departments behind the gateway's upstream plus one spare slot; each replica in turn is
replaced by a new process started in the free slot and ready before the old one gets
SIGTERM and drains (its slot becomes the free one). Clients read lists and create with an
Idempotency-Key all along. Nothing fails: a connection refused by a slot that is free or
draining goes to the next replica (nothing was sent), a kept-alive connection the draining
one closes is replayed safely (a GET, a keyed POST); every acknowledged create is in the
database exactly once; each old process exits 0 within its grace. About 10 s.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp

from lib.auth.principal import Role
from tests import pg
from tests.e2e.gateway_stack import Gateway, wait_until
from tests.reliability import figures
from tests.reliability.stack import bearer, common_env, start
from tools.deploy.nginx import FAIL_TIMEOUT
from tools.local.ports import free_port
from tools.local.service_process import PROCESS_MARGIN, ServiceProcess

SHUTDOWN_TIMEOUT = 5.0  # each replica's drain bound (its grace)
CLIENTS = 6
BEFORE = 60  # successful requests before the first replacement, and after the last


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def test_replicas_replaced_one_at_a_time_under_load_fail_nothing(
    departments_dsn: str, tmp_path: Path
) -> None:
    slots = [free_port() for _ in range(3)]  # two replicas + the spare a release starts in

    async def replica(port: int, tag: str) -> ServiceProcess:
        env = common_env("departments", departments_dsn, SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT))
        env["DEPARTMENTS_PORT"] = str(port)
        return await start("departments", env, tmp_path / f"departments-{tag}.log")

    running = {slots[0]: await replica(slots[0], "a"), slots[1]: await replica(slots[1], "b")}
    gateway = Gateway(tmp_path, {"departments": [f"127.0.0.1:{p}" for p in slots]}, tmp_path)
    url = f"{(await gateway.start()).url}/api/departments/v1/departments"
    headers = bearer(Role.ADMIN)
    outcomes: Counter[str] = Counter()
    latency: dict[str, list[float]] = {"before": [], "during": []}
    acknowledged: list[str] = []
    phase = "before"
    stop = asyncio.Event()

    async def client(http: aiohttp.ClientSession, n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            began = time.monotonic()
            try:
                if i % 2:
                    async with http.get(url, params={"limit": "5"}, headers=headers) as r:
                        await r.read()
                        outcome = "ok" if r.status == 200 else f"GET {r.status}"
                else:
                    name = f"roll-{uuid.uuid4().hex}"
                    body = {"name": name, "address": "1 Rolling Rd"}
                    keyed = {**headers, "Idempotency-Key": f"k-{name}"}
                    async with http.post(url, json=body, headers=keyed) as r:
                        await r.read()
                        outcome = "ok" if r.status == 201 else f"POST {r.status}"
                    if r.status == 201:
                        acknowledged.append(name)
            except aiohttp.ClientError as exc:
                outcome = f"connection: {type(exc).__name__}"
            latency[phase].append(time.monotonic() - began)
            outcomes[outcome] += 1

    async def in_service(new: ServiceProcess) -> None:
        """The gateway routes to the new replica: a slot that failed (the free one) is
        tried again only FAIL_TIMEOUT after its failure."""

        async def routed() -> bool:
            return '"path":"/v1/departments"' in new.log.read_text()

        await wait_until(routed, f"the gateway routes to {new.url}", FAIL_TIMEOUT + PROCESS_MARGIN)

    async def successes(at_least: int) -> None:
        target = outcomes["ok"] + at_least

        async def reached() -> bool:
            return outcomes["ok"] >= target

        await wait_until(reached, f"{at_least} more successful requests", PROCESS_MARGIN)

    timeout = aiohttp.ClientTimeout(total=SHUTDOWN_TIMEOUT + PROCESS_MARGIN)
    exits: list[tuple[int | None, float]] = []
    async with aiohttp.ClientSession(timeout=timeout) as http:
        tasks = [asyncio.create_task(client(http, n)) for n in range(CLIENTS)]
        try:
            await successes(BEFORE)
            phase = "during"
            for k, old_port in enumerate(list(running)):
                free = next(p for p in slots if p not in running)
                new = running[free] = await replica(free, f"new{k}")  # up and ready first
                await in_service(new)
                old = running.pop(old_port)
                began = time.monotonic()
                old.proc.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(old.proc.wait, SHUTDOWN_TIMEOUT + PROCESS_MARGIN)
                exits.append((code, time.monotonic() - began))
                await successes(BEFORE // 3)
            await successes(BEFORE)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            gateway.stop()
            for service in running.values():
                service.stop()
    rows = await pg.fetch(
        departments_dsn,
        "SELECT name, count(*) AS n FROM departments WHERE name = ANY($1) GROUP BY name",
        acknowledged,
    )
    before, during = latency["before"], latency["during"]
    summary = (
        f"rolling release: {sum(outcomes.values())} requests, {dict(outcomes)}; "
        f"p50/p99 before {percentile(before, 0.5) * 1000:.1f}/{percentile(before, 0.99) * 1000:.1f}"
        f" ms, during {percentile(during, 0.5) * 1000:.1f}/{percentile(during, 0.99) * 1000:.1f}"
        f" ms; exits {exits}"
    )
    print(summary)
    assert set(outcomes) == {"ok"}, summary
    assert all(code == 0 and took < SHUTDOWN_TIMEOUT + PROCESS_MARGIN for code, took in exits)
    assert len(exits) == 2, summary
    assert {r["name"]: r["n"] for r in rows} == dict.fromkeys(acknowledged, 1)
    figures.add("releases rolled without a failed request", 1)
