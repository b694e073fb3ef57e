"""What must happen once still happens once with two replicas racing (ADR 0022). Two
orders processes on one database, each with its outbox relay on. The same create with one
Idempotency-Key sent to both at once makes one order; jobs completed through both, at once,
get their awards relayed once each: every outbox row delivered, each award's key once in
the points ledger and the provider's balance 10 x the jobs (SKIP LOCKED leases: the two
relays never hold one row at once; a lease that lapses on a starved machine would show
as a second attempt, printed, which the key keeps harmless). Two users processes on one
database, each with its mail relay on: accounts registered through both at once get their
verification mail exactly once each. About 12 s and 5 s.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp

from lib.auth.principal import Role
from tests import pg
from tests.integration.orders_support import order_body
from tests.integration.smtp_support import outbox_left, smtp_sink
from tests.reliability import figures
from tests.reliability.awards import awards_once, error_lines, relay_env, settle, start_points
from tests.reliability.stack import PASSWORD, start, users_env
from tests.reliability.world import Orders, actor, call, catalog_service
from tools.local.service_process import PROCESS_MARGIN, ServiceProcess

JOBS = 12
ACCOUNTS = 16
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
    async with pg.connected(orders_dsn) as conn:
        orders = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE customer_id = $1", customer.id
        )
        rows = await conn.fetch("SELECT attempts, delivered_at FROM outbox")
    assert orders == 1 + JOBS  # the raced create once, then one per job
    assert len(rows) == JOBS
    assert [r for r in rows if r["delivered_at"] is None] == []
    await awards_once(points_dsn, waiting, str(provider.id))
    assert error_lines(*(r.log for r in replicas), points.log) == []
    figures.add("two-replica races held", 2)
    attempts = sorted(r["attempts"] for r in rows)
    print(f"two orders replicas: 1 order of {RACES} raced creates, {JOBS} awards once; "
          f"outbox attempts {attempts}")  # fmt: skip


async def test_two_users_replicas_send_each_verification_mail_once(
    users_dsn: str, tmp_path: Path
) -> None:
    replicas: list[ServiceProcess] = []
    received: Counter[str] = Counter()
    with smtp_sink() as sink:
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROCESS_MARGIN))
        try:
            for tag in ("a", "b"):
                env = users_env(
                    users_dsn,
                    SMTP_HOST="127.0.0.1",
                    SMTP_PORT=str(sink.port),
                    MAIL_RELAY_INTERVAL="0.1",
                    STORAGE_DIR=str(tmp_path / "storage"),
                )
                replicas.append(await start("users", env, tmp_path / f"users-{tag}.log"))
            emails = [f"two{uuid.uuid4().hex[:12]}@fixup.test" for _ in range(ACCOUNTS)]

            async def register(i: int, email: str) -> None:
                account = {
                    "email": email, "password": PASSWORD, "first_name": "Ada",
                    "last_name": "Lovelace", "phone_number": "+1 555 0100", "role": "CUSTOMER",
                }  # fmt: skip
                url = f"{replicas[i % 2].url}/v1/auth/register"
                async with http.post(url, json=account) as r:
                    assert r.status == 201, await r.text()

            await asyncio.gather(*(register(i, e) for i, e in enumerate(emails)))
            while not set(emails) <= set(received):
                received[(await sink.next_mail())["To"]] += 1  # MAIL_WAIT bounds each
            # a row leaves the outbox once its mail was accepted: none left to send
            pending = await outbox_left(users_dsn)
        finally:
            await http.close()
            for replica in replicas:
                replica.stop()
        while not sink.inbox.empty():  # what arrived beyond the first of each
            received[sink.inbox.get_nowait()["To"]] += 1
    assert pending == 0
    assert {e: received[e] for e in emails} == dict.fromkeys(emails, 1)
    assert error_lines(*(r.log for r in replicas)) == []
    figures.add("two-replica races held", 1)
