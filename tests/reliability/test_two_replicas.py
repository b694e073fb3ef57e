"""What must happen once still happens once with two replicas racing (ADR 0022): two
orders processes on one database, each with its outbox relay on. The same create with one
Idempotency-Key sent to both at once makes one order; jobs completed through both, at once,
get their awards relayed once each: every outbox row delivered, each award's key once in
the points ledger and the provider's balance 10 x the jobs (SKIP LOCKED leases: the two
relays never hold one row at once; a lease that lapses on a starved machine would show
as a second attempt, printed, which the key keeps harmless). About 12 s.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import asyncpg

from lib.auth.principal import Role
from tests.integration.orders_support import order_body
from tests.reliability import figures
from tests.reliability.awards import awards_once, error_lines, relay_env, settle, start_points
from tests.reliability.stack import start
from tests.reliability.world import Orders, actor, call, catalog_service
from tools.service_process import PROCESS_MARGIN, ServiceProcess

JOBS = 12
RACES = 4  # requests with the same key, half to each replica


async def test_two_orders_replicas_create_once_and_relay_each_award_once(
    migrated_db: Callable[[str], str], catalog: ServiceProcess, tmp_path: Path
) -> None:
    orders_dsn, points_dsn = migrated_db("orders"), migrated_db("points")
    points, p_env = await start_points(points_dsn, tmp_path / "points.log")
    replicas: list[ServiceProcess] = []
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROCESS_MARGIN))
    try:
        for tag in ("a", "b"):  # each env its own free port, one database
            env = relay_env(orders_dsn, catalog.url, p_env)
            replicas.append(await start("orders", env, tmp_path / f"orders-{tag}.log"))
        customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
        service_id = await catalog_service(http, catalog.url, provider)
        steps = [Orders(http, r.url, service_id, customer, provider) for r in replicas]

        key = {"Idempotency-Key": f"race-{uuid.uuid4().hex}"}
        body = order_body(service_id)
        made = await asyncio.gather(
            *(
                call(http, "POST", f"{steps[i % 2].url}/v1/orders", customer, 201, body, **key)
                for i in range(RACES)
            )
        )
        assert len({m["data"]["id"] for m in made}) == 1, made

        waiting = await steps[0].jobs(JOBS, "IN_PROGRESS")
        await asyncio.gather(
            *(steps[i % 2].move(job_id, "complete") for i, job_id in enumerate(waiting))
        )
        await settle(orders_dsn)
    finally:
        await http.close()
        for replica in replicas:
            replica.stop()
        points.stop()
    conn = await asyncpg.connect(orders_dsn)
    try:
        orders = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE customer_id = $1", customer.id
        )
        rows = await conn.fetch("SELECT attempts, delivered_at FROM outbox")
    finally:
        await conn.close()
    assert orders == 1 + JOBS  # the raced create once, then one per job
    assert len(rows) == JOBS
    assert [r for r in rows if r["delivered_at"] is None] == []
    await awards_once(points_dsn, waiting, str(provider.id))
    assert error_lines(*(r.log for r in replicas), points.log) == []
    figures.add("two-replica races held", 2)
    attempts = sorted(r["attempts"] for r in rows)
    print(f"two orders replicas: 1 order of {RACES} raced creates, {JOBS} awards once; "
          f"outbox attempts {attempts}")  # fmt: skip
