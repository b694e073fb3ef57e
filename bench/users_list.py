"""GET /v1/users's data path, three ways, in one run, behind latency proxies (as between
hosts):

- one connection (what the handler does, ADR 0005): page, then the statistics on the same
  connection while the points call is in flight;
- two connections (the earlier handler): statistics on a second connection concurrently
  with page -> points — faster unloaded, but hold-and-wait on the pool under load;
- sequential: statistics, page, points one after another.

20,000 users (the statistics scan them all, as in production); points on a real grpc.aio
server over MariaDB; each server behind a loopback proxy adding --delay ms per chunk.
Prints the medians and the ratios to sequential.
Run: .venv/bin/python bench/users_list.py [--rounds 30] [--delay 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.clients.points import PointsClient
from lib.db.connecting import connect
from lib.db.pool import Database
from lib.grpc.client import ChannelPool
from lib.http.cursor import ListPage
from lib.logging import configure_logging
from services.users.db import users as q
from services.users.handlers import UsersPage, load_users
from services.users.points import PointsLookup, points_for
from services.users.schemas import UserListQuery
from tests.proxy import TcpProxy, through
from tools.local.databases import MYSQL_DEFAULT, PG_DEFAULT
from tools.local.dbadmin import drop_database
from tools.local.ports import free_port
from tools.local.service_process import ServiceProcess
from tools.migrations import migrate

USERS = 20_000
FILTERS: dict[str, Any] = {"role": None, "department_id": None, "verified": None, "search": None}
PAGE: UsersPage = ListPage(
    UserListQuery.model_validate({}), "last_name", "asc", 50, 1, 0, None, q.LIST_USERS_SORTING
)  # what list_page makes of ?limit=50


async def load_statistics(db: Database) -> None:
    async with db.acquire() as conn:
        await q.user_statistics(conn, **FILTERS)


async def load_page(db: Database) -> list[str]:
    async with db.acquire() as conn:
        rows = await q.list_users(
            conn, **FILTERS, orderby="last_name", sort="asc", row_offset=0, row_limit=50
        )
    return [str(r.id) for r in rows]


async def load_page_with_points(db: Database, lookup: PointsLookup) -> None:
    await points_for(lookup, await load_page(db))


async def seed(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    rng = random.Random(7)
    rows = [
        (uuid.uuid4(), f"user{n}@example.com", "x" * 20, f"First{n}", f"Last{n:05d}",
         "+1 555 0100", rng.randint(18, 70), Decimal(rng.randint(30_000, 120_000)))
        for n in range(USERS)
    ]  # fmt: skip
    await conn.copy_records_to_table(
        "users",
        records=rows,
        columns=["id", "email", "password_hash", "first_name", "last_name", "phone_number",
                 "age", "salary"],
    )  # fmt: skip
    await conn.execute("ANALYZE users")
    await conn.close()


async def run(
    args: argparse.Namespace, users_dsn: str, grpc_port: int, points: ServiceProcess
) -> None:
    await seed(users_dsn)
    await points.wait_healthy()
    parts = urlsplit(users_dsn)
    pg_proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    grpc_proxy = await TcpProxy("127.0.0.1", grpc_port).start()
    db = await connect(through(users_dsn, pg_proxy), min_size=2, max_size=4, reset=False)
    pool = ChannelPool(f"127.0.0.1:{grpc_proxy.port}", 1)
    lookup = PointsClient(pool, timeout=10)

    async def one_connection() -> None:
        await load_users(db, lookup, FILTERS, PAGE)

    async def two_connections() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(load_statistics(db))
            group.create_task(load_page_with_points(db, lookup))

    async def sequential() -> None:
        await load_statistics(db)
        await load_page_with_points(db, lookup)

    try:
        for step in (one_connection, two_connections, sequential):  # warm up
            await step()
        pg_proxy.delay = grpc_proxy.delay = args.delay / 1000

        async def statistics_only() -> None:
            await load_statistics(db)

        async def page_only() -> None:
            await load_page(db)

        async def points_only() -> None:
            await lookup.get_user_list_points([str(uuid.uuid4()) for _ in range(50)])

        steps = {
            "one connection": one_connection,
            "two connections": two_connections,
            "sequential": sequential,
            "statistics": statistics_only,
            "page": page_only,
            "points": points_only,
        }
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.rounds):
            for name, step in steps.items():
                started = time.perf_counter()
                await step()
                times[name].append(time.perf_counter() - started)
        med = {name: statistics.median(t) * 1000 for name, t in times.items()}
        one, two, seq = med["one connection"], med["two connections"], med["sequential"]
        legs = ", ".join(f"{k} {med[k]:.1f}" for k in ("statistics", "page", "points"))
        print(f"users list data path, {USERS} users, page 50, +{args.delay} ms one-way latency:")
        print(f"  legs (ms): {legs}")
        print(f"  sequential       {seq:6.1f} ms")
        print(f"  two connections  {two:6.1f} ms   ratio to sequential {two / seq:.2f}")
        print(f"  one connection   {one:6.1f} ms   ratio to sequential {one / seq:.2f} (handler)")
    finally:
        await pool.close()
        await db.close()
        await pg_proxy.stop()
        await grpc_proxy.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--delay", type=float, default=2.0, help="ms per chunk (both proxies)")
    args = parser.parse_args()
    configure_logging("bench", "WARNING")  # no per-call log lines in the output
    suffix = os.getpid()
    users_dsn = f"{os.environ.get('BENCH_PG', PG_DEFAULT)}/fixup_bench_users_{suffix}"
    points_dsn = f"{os.environ.get('BENCH_MYSQL', MYSQL_DEFAULT)}/fixup_bench_points_{suffix}"
    try:
        migrate.up("users", users_dsn)
        migrate.up("points", points_dsn)
        # points in its own process, as in production (its codec work must not share our loop)
        grpc_port = free_port()
        with tempfile.TemporaryDirectory(prefix="bench-users-list-") as tmp:
            points = ServiceProcess(
                {"POINTS_DATABASE_URL": points_dsn, "POINTS_GRPC_PORT": str(grpc_port),
                 "POINTS_PORT": str(free_port()), "LOG_LEVEL": "WARNING", "WORKERS": "1",
                 "REDIS_URL": ""},
                Path(tmp) / "points.log",
                name="points",
            )  # fmt: skip
            try:
                asyncio.run(run(args, users_dsn, grpc_port, points))
            finally:
                points.stop()
    finally:
        drop_database(users_dsn)
        drop_database(points_dsn)


if __name__ == "__main__":
    main()
