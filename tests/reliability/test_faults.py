"""Faults on servers the test starts itself (a throwaway PostgreSQL cluster and Redis on
free ports) or a latency proxy in front of one: the services answer 503 or degrade during
the fault, recover without a restart, and lose no acknowledged write."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from lib.auth.principal import Role
from tests import pg
from tests.integration.users_support import make_user
from tests.proxy import TcpProxy, through
from tests.reliability import figures
from tests.reliability.awards import (
    awards_once,
    error_lines,
    relay_env,
    secrets_in,
    settle,
    start_points,
)
from tests.reliability.budget import WRITERS
from tests.reliability.stack import bearer, common_env, points_env, start, users_env
from tests.reliability.throwaway import RedisServer
from tests.reliability.world import Orders, actor, catalog_service
from tools.local.databases import with_database
from tools.local.db_servers import PgCluster
from tools.local.dbadmin import create_database, mysql_connect
from tools.local.ports import free_port
from tools.local.server_homes import remove_home, server_home
from tools.local.service_process import PROCESS_MARGIN, ServiceProcess
from tools.migrations import migrate

ACQUIRE_TIMEOUT = 1.0  # DB_ACQUIRE_TIMEOUT of the services below
POOL = 2  # DB_POOL_MAX of departments_through_a_proxy
FAST_503 = aiohttp.ClientTimeout(total=ACQUIRE_TIMEOUT + PROCESS_MARGIN)
JOBS = 12  # completed in three waves: points killed, down, coming back


@pytest.fixture
async def cluster() -> AsyncIterator[PgCluster]:
    """A PostgreSQL cluster of the test's own (the machine's is never stopped)."""
    home = server_home("pg-", "postgres")
    made = PgCluster(home / "data", free_port())
    try:
        await asyncio.to_thread(made.start, {"fsync": "off"})
        yield made
    finally:
        await asyncio.to_thread(made.stop, "immediate")
        remove_home(home)


@dataclass
class Writers:
    """Concurrent creates in a loop; what each answer was, and every acknowledged id."""

    url: str
    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # hangs, 5xx other than 503
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=ACQUIRE_TIMEOUT + PROCESS_MARGIN)
        headers = bearer(Role.ADMIN)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while not self.stop.is_set():
                body = {"name": f"d-{uuid.uuid4().hex}", "address": "1 Fault Lane"}
                try:
                    async with http.post(self.url, json=body, headers=headers) as resp:
                        answer = await resp.json(content_type=None)
                        status = resp.status
                        if status == 201:
                            self.acknowledged.append(answer["data"]["id"])
                        elif status == 503 and "Retry-After" not in resp.headers:
                            self.failures.append("503 without Retry-After")
                        elif status != 503:
                            self.failures.append(f"{status}: {answer}")
                except (TimeoutError, aiohttp.ClientError) as exc:
                    status = 0
                    self.failures.append(f"no answer: {exc!r}")
                async with self.changed:
                    self.statuses[status] += 1
                    self.changed.notify_all()

    async def until(self, status: int, count: int, seconds: float) -> None:
        """Wait until `count` more answers with `status` arrive."""
        target = self.statuses[status] + count
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(lambda: self.statuses[status] >= target), seconds
            )


async def test_postgres_stopped_and_restarted_under_write_load(
    cluster: PgCluster, tmp_path: Path
) -> None:
    dsn = with_database(cluster.dsn(), "fixup_departments")
    await asyncio.to_thread(create_database, dsn)
    await asyncio.to_thread(migrate.up, "departments", dsn)
    env = common_env("departments", dsn, DB_POOL_MAX="4", DB_ACQUIRE_TIMEOUT=str(ACQUIRE_TIMEOUT))
    service = await start("departments", env, tmp_path / "svc.log")
    writers = Writers(f"{service.url}/v1/departments")
    tasks = [asyncio.create_task(writers.run()) for _ in range(WRITERS)]
    try:
        await writers.until(201, 50, PROCESS_MARGIN)
        await asyncio.to_thread(cluster.stop, "fast")  # the database goes away mid-load
        await writers.until(503, 3 * WRITERS, PROCESS_MARGIN)
        await asyncio.to_thread(cluster.start)
        await writers.until(201, 50, PROCESS_MARGIN * 3)  # recovered, same process
        assert service.proc.poll() is None, "the service must recover without a restart"
    finally:
        writers.stop.set()
        await asyncio.gather(*tasks)
        service.stop()
    assert writers.failures == [], writers.failures[:5]
    present = {
        str(r["id"])
        for r in await pg.fetch(
            dsn, "SELECT id FROM departments WHERE id = ANY($1::uuid[])", writers.acknowledged
        )
    }
    lost = len(set(writers.acknowledged) - present)
    figures.add("faults survived", 1)
    figures.add("acknowledged writes", len(writers.acknowledged))
    figures.add("acknowledged writes lost", lost)
    figures.add("503 answers during database outages", writers.statuses[503])
    print(f"postgres outage: {dict(writers.statuses)}; acknowledged {len(writers.acknowledged)}")
    assert lost == 0


async def test_redis_stopped_rate_limits_fall_back_to_the_process_with_one_warning(
    migrated_db: Callable[[str], str], tmp_path: Path
) -> None:
    redis_server = RedisServer()
    await asyncio.to_thread(redis_server.start)
    env = common_env(
        "departments",
        migrated_db("departments"),
        REDIS_URL=redis_server.url,
        RATE_LIMIT_IP_RATE="2",
        RATE_LIMIT_IP_BURST="5",
        RATE_LIMIT_REDIS_TIMEOUT="10",  # the setting's ceiling; stopped: refused at once anyway
    )
    service = await start("departments", env, tmp_path / "svc.log")
    url = f"{service.url}/v1/departments?limit=1"

    async def burst() -> Counter[int]:
        async with aiohttp.ClientSession() as http:
            statuses: Counter[int] = Counter()
            for _ in range(20):
                async with http.get(url) as resp:
                    statuses[resp.status] += 1
            return statuses

    async def fallbacks() -> float:
        async with aiohttp.ClientSession() as http, http.get(f"{service.url}/metrics") as resp:
            text = await resp.text()
        series = 'ratelimit_fallback_total{limit="ip",service="departments"}'
        values = [line.split()[-1] for line in text.splitlines() if line.startswith(series)]
        assert values, f"{series} is not exposed"
        return float(values[0])

    def lines(event: str) -> list[str]:
        return [line for line in service.log.read_text().splitlines() if f'"{event}"' in line]

    try:
        limited = await burst()
        assert limited[429] >= 10, limited  # the shared limiter works
        assert limited[200] <= 10, limited
        assert await fallbacks() == 0  # exposed from start-up, before any outage
        await asyncio.to_thread(redis_server.stop)
        during = await burst()
        # the process's own bucket (burst 5, 2/s): still limited, never a 5xx
        assert set(during) == {200, 429}, during
        assert during[429] >= 10, during
        assert await fallbacks() >= 20
        await burst()  # more of the same outage: no second warning
        warnings = lines("rate_limit_store_unreachable")
        assert len(warnings) == 1, warnings
        assert '"level":"warning"' in warnings[0], warnings[0]
        await asyncio.to_thread(redis_server.start)  # same port, empty buckets
        deadline = time.monotonic() + PROCESS_MARGIN  # the store retries every second
        while not lines("rate_limit_store_restored"):
            assert time.monotonic() < deadline, "the limits never went back to Redis"
            await burst()
        again = await burst()
        assert again[429] >= 10, again  # limiting in Redis again, no restart
        assert service.proc.poll() is None
    finally:
        service.stop()
        await asyncio.to_thread(redis_server.stop)
    figures.add("faults survived", 1)


@contextlib.asynccontextmanager
async def departments_through_a_proxy(
    dsn: str, log: Path, **env: str
) -> AsyncIterator[tuple[ServiceProcess, TcpProxy]]:
    """departments on a pool of POOL, its database reached through a proxy (hold() freezes
    it). DB_COMMAND_TIMEOUT is longer than any bound of the tests: the stuck requests wait
    for the release, not for their command's timeout (5 s by default: a loaded machine can
    take that long over their steps)."""
    parts = urlsplit(dsn)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    try:
        env = common_env(
            "departments",
            through(dsn, proxy),
            DB_POOL_MIN=str(POOL),
            DB_POOL_MAX=str(POOL),
            DB_ACQUIRE_TIMEOUT=str(ACQUIRE_TIMEOUT),
            DB_COMMAND_TIMEOUT="25",
            **env,
        )
        service = await start("departments", env, log)
        try:
            yield service, proxy
        finally:
            proxy.release()
            service.stop()
    finally:
        await proxy.stop()


async def timed_get(http: aiohttp.ClientSession, url: str) -> tuple[int, float, bool]:
    """The status, the seconds it took, and whether a Retry-After came with it."""
    began = time.monotonic()
    async with http.get(url) as resp:
        await resp.read()
        return resp.status, time.monotonic() - began, "Retry-After" in resp.headers


async def test_slow_database_gives_fast_503s_not_a_pile_up(
    migrated_db: Callable[[str], str], tmp_path: Path
) -> None:
    # the handlers hold the connections: with kept pages on, a list's GET first waits for
    # the stamp read it shares with the others (ADR 0056; the next test)
    async with (
        departments_through_a_proxy(
            migrated_db("departments"), tmp_path / "svc.log", PAGE_CACHE_BYTES="0"
        ) as (service, proxy),
        aiohttp.ClientSession(timeout=FAST_503) as http,
    ):
        url = f"{service.url}/v1/departments?limit=1"
        proxy.hold()  # the database stops answering: every pooled connection stuck
        stuck = [asyncio.create_task(timed_get(http, url)) for _ in range(POOL)]
        await asyncio.wait_for(proxy.held(POOL), PROCESS_MARGIN)
        # 3 x the pool more: each one a fast 503, none queued behind the stuck ones
        answers = await asyncio.gather(*(timed_get(http, url) for _ in range(3 * POOL)))
        assert all(s == 503 and retry for s, _, retry in answers), answers
        assert max(t for _, t, _ in answers) < ACQUIRE_TIMEOUT + PROCESS_MARGIN / 2, answers
        async with http.get(f"{service.url}/health") as resp:  # the process still answers
            assert resp.status == 200
        assert not any(task.done() for task in stuck)
        proxy.release()
        assert [s for s, _, _ in await asyncio.gather(*stuck)] == [200] * POOL
        assert (await timed_get(http, url))[0] == 200
    figures.add("faults survived", 1)


async def test_frozen_database_with_kept_pages_gives_fast_503s(
    migrated_db: Callable[[str], str], tmp_path: Path
) -> None:
    """With the page cache on, every list GET first waits for the stamp read it shares with
    the others (ADR 0038, 0056). The database freezes under that read: each waiter gets the
    pool's 503 after the acquire timeout, not after the stuck read's command timeout (25 s
    here), and once the database answers the same list is served again, then kept."""
    async with (
        departments_through_a_proxy(
            migrated_db("departments"), tmp_path / "svc.log", PAGE_CACHE_BYTES=str(1024 * 1024)
        ) as (service, proxy),
        aiohttp.ClientSession(timeout=FAST_503) as http,
    ):
        url = f"{service.url}/v1/departments?limit=1"
        assert (await timed_get(http, url))[0] == 200
        proxy.hold()  # the database stops answering
        first = asyncio.create_task(timed_get(http, url))
        await asyncio.wait_for(proxy.held(1), PROCESS_MARGIN)  # its stamp read is stuck
        waiters = [asyncio.create_task(timed_get(http, url)) for _ in range(6)]
        answers = await asyncio.gather(first, *waiters)
        assert all(s == 503 and retry for s, _, retry in answers), answers
        assert max(t for _, t, _ in answers) < ACQUIRE_TIMEOUT + PROCESS_MARGIN / 2, answers
        async with http.get(f"{service.url}/health") as resp:  # the process still answers
            assert resp.status == 200
        proxy.release()
        assert [(await timed_get(http, url))[0] for _ in range(2)] == [200, 200]
        async with http.get(f"{service.url}/metrics") as resp:
            text = await resp.text()
        hits = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("page_cache_hits_total{")
        ]
        assert sum(hits) >= 1, hits  # the cache was on: the second read was a kept page
    figures.add("faults survived", 1)


async def test_points_killed_and_restarted_users_list_degrades_and_recovers(
    migrated_db: Callable[[str], str], tmp_path: Path
) -> None:
    users_dsn, points_dsn = migrated_db("users"), migrated_db("points")
    user_id = await make_user(users_dsn, Role.CUSTOMER)
    with mysql_connect(points_dsn) as conn, conn.cursor() as cur:
        database = urlsplit(points_dsn).path.lstrip("/")
        cur.execute(
            f"INSERT INTO `{database}`.user_points (user_id, points) VALUES (%s, 42)",
            (str(user_id),),
        )
    p_env = points_env(points_dsn)
    points = await start("points", p_env, tmp_path / "points.log")
    breaker_reset = 1.0
    u_env = users_env(
        users_dsn,
        points_addr=f"127.0.0.1:{p_env['POINTS_GRPC_PORT']}",
        POINTS_TIMEOUT="0.5",
        POINTS_BREAKER_RESET=str(breaker_reset),
    )
    users = await start("users", u_env, tmp_path / "users.log")
    moderator = bearer(Role.MODERATOR)

    async def listing() -> tuple[list[int | None], list[str]]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{users.url}/v1/users", headers=moderator) as resp,
        ):
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        return [u["points"] for u in body["data"]], body["meta"].get("degraded", [])

    try:
        assert await listing() == ([42], [])
        points.stop()  # SIGKILL: no goodbye
        began = time.monotonic()
        assert await listing() == ([None], ["points"])
        assert time.monotonic() - began < 0.5 + PROCESS_MARGIN
        points = await start("points", p_env, tmp_path / "points2.log")
        deadline = time.monotonic() + breaker_reset + PROCESS_MARGIN
        while (got := await listing()) != ([42], []):
            assert time.monotonic() < deadline, got
            await asyncio.sleep(0.1)  # the breaker's half-open probe comes after its reset
    finally:
        users.stop()
        points.stop()
    figures.add("faults survived", 1)


async def test_points_killed_and_restarted_while_jobs_complete_every_award_once(
    migrated_db: Callable[[str], str], catalog: ServiceProcess, tmp_path: Path
) -> None:
    """Jobs completed concurrently while points is SIGKILLed mid-delivery, while it is down,
    and while it comes back: every acknowledged completion's award lands in the points
    ledger exactly once (the outbox relay retries; points applies a key once)."""
    orders_dsn, points_dsn = migrated_db("orders"), migrated_db("points")
    points, p_env = await start_points(points_dsn, tmp_path / "points.log")
    env = relay_env(orders_dsn, catalog.url, p_env)
    orders = await start("orders", env, tmp_path / "orders.log")
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    completed: list[str] = []
    try:
        async with aiohttp.ClientSession() as http:
            service_id = await catalog_service(http, catalog.url, provider)
            steps = Orders(http, orders.url, service_id, customer, provider)
            jobs = await steps.jobs(JOBS, "IN_PROGRESS")
            some_done = asyncio.Event()

            async def complete(job_id: str) -> None:
                await steps.move(job_id, "complete")  # asserts 200: acknowledged
                completed.append(job_id)
                if len(completed) >= 2:
                    some_done.set()

            third = JOBS // 3
            first = [asyncio.create_task(complete(j)) for j in jobs[:third]]
            await asyncio.wait_for(some_done.wait(), PROCESS_MARGIN)
            points.stop()  # SIGKILL while the relay delivers the first awards
            await asyncio.gather(*first)
            await asyncio.gather(*(complete(j) for j in jobs[third : 2 * third]))  # points down
            late = [asyncio.create_task(complete(j)) for j in jobs[2 * third :]]
            points, _ = await start_points(points_dsn, tmp_path / "points2.log", p_env)
            await asyncio.gather(*late)
        took = await settle(orders_dsn)
        assert orders.proc.poll() is None  # the relay recovered without a restart
    finally:
        orders.stop()
        points.stop()
    lost = await awards_once(points_dsn, completed, str(provider.id))
    assert error_lines(orders.log) == []
    tokens = [who.headers["Authorization"].split()[1] for who in (customer, provider)]
    assert secrets_in([orders.log, points.log, catalog.log], *tokens) == []
    # the fault was felt: deliveries failed while points was gone, and were retried
    failed = orders.log.read_text().count("outbox_delivery_failed")
    assert failed > 0
    figures.add("faults survived", 1)
    figures.add("acknowledged writes", len(completed))
    figures.add("acknowledged writes lost", lost)
    figures.add("outbox awards delivered exactly once across a points kill", len(completed))
    print(
        f"points killed: {len(completed)} awards once each ({failed} failed deliveries "
        f"retried), drained {took:.2f}s after"
    )
