"""What PgBouncer in transaction mode costs the services' data path (POOLER=pgbouncer, ADR 0037).

departments' generated queries through lib.db's pool, three ways, side by side in one run
(interleaved rounds, the order rotated, medians):
- direct: the pool on PostgreSQL, asyncpg's statement cache on (the default);
- direct, no statement cache: what the pooler forces on asyncpg (statement_cache_size=0),
  without the pooler: the cost of preparing every statement again;
- through PgBouncer: a PgBouncer 1.18 of the run's own (tools/local/pgbouncer.py), transaction
  mode, 10 server connections; the pool as POOLER=pgbouncer opens it.
Each: --clients concurrent callers, a pool of 10, for --seconds per phase: reads (the list's
first page of 20 with its total, as GET /v1/departments) and writes (one insert in a
transaction, as POST). Prints operations/s, p50 and the ratios to direct.
Run: .venv/bin/python bench/pgbouncer.py [--rounds 3] [--seconds 2] [--clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.db.connecting import connect
from lib.db.pool import Database
from lib.logging import configure_logging
from lib.pooler import through
from services.departments.db import departments as q
from tools.local import pgbouncer
from tools.local.databases import PG_DEFAULT
from tools.local.dbadmin import drop_database
from tools.migrations import migrate

ROOT = Path(__file__).resolve().parent.parent
POOL = 10
ROWS = 1000


async def seed(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO departments (name, address) VALUES ($1, $2)",
            [(f"Dept {n:05d}", f"{n} Road") for n in range(ROWS)],
        )
        await conn.execute("ANALYZE departments")
    finally:
        await conn.close()


async def read(db: Database) -> None:
    async with db.acquire() as conn:
        page = await q.page_departments(
            conn, orderby="name", sort="asc", row_offset=0, row_limit=20, archived=False
        )
    assert page is not None


async def write(db: Database) -> None:
    async with db.transaction() as conn:
        made = await q.create_department(conn, name=f"B {uuid.uuid4().hex}", address="1 Road")
    assert made is not None


async def phase(
    db: Database, op: Callable[[Database], Awaitable[None]], clients: int, seconds: float
) -> tuple[float, list[float]]:
    """`clients` callers repeating `op` for `seconds`: -> (operations/s, latencies in s)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await op(db)
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(clients)))
    return len(latencies) / (time.perf_counter() - began), latencies


async def run(args: argparse.Namespace, dsn: str, bouncer: str) -> None:
    await seed(dsn)
    pools = {
        "direct": await connect(dsn, min_size=POOL, max_size=POOL, reset=False),
        "direct, no statement cache": await connect(
            dsn, min_size=POOL, max_size=POOL, reset=False, pooler="pgbouncer"
        ),
        "through PgBouncer": await connect(
            through(dsn, bouncer), min_size=POOL, max_size=POOL, reset=False, pooler="pgbouncer"
        ),
    }
    ops = {"reads": read, "writes": write}
    rates: dict[tuple[str, str], list[float]] = {(v, o): [] for v in pools for o in ops}
    lat: dict[tuple[str, str], list[float]] = {(v, o): [] for v in pools for o in ops}
    try:
        for db in pools.values():  # warm up: connections open, statements cached
            await phase(db, read, args.clients, 0.3)
            await phase(db, write, args.clients, 0.3)
        names = list(pools)
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for variant in order:
                for op_name, op in ops.items():
                    rate, times = await phase(pools[variant], op, args.clients, args.seconds)
                    rates[variant, op_name].append(rate)
                    lat[variant, op_name] += times
    finally:
        for db in pools.values():
            await db.close()
    print(
        f"departments data path, {args.clients} callers, pool {POOL}, {args.rounds} rounds of"
        f" {args.seconds:g} s, PgBouncer {'.'.join(map(str, pgbouncer.version()))}"
        " transaction mode, 10 server connections:"
    )
    for op_name in ops:
        base = statistics.median(rates["direct", op_name])
        for variant in pools:
            rate = statistics.median(rates[variant, op_name])
            p50 = statistics.median(lat[variant, op_name]) * 1000
            print(
                f"  {op_name:6} {variant:27} {rate:7.0f} /s  p50 {p50:5.2f} ms"
                f"  ratio to direct {rate / base:.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    configure_logging("bench", "WARNING")
    server = os.environ.get("BENCH_PG", PG_DEFAULT)
    dsn = f"{server}/fixup_bench_pgbouncer_{os.getpid()}"
    parts = urlsplit(server)
    address = f"{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
    try:
        migrate.up("departments", dsn)
        with pgbouncer.running(address, ROOT / "var", pool_size=POOL) as bouncer:
            asyncio.run(run(args, dsn, bouncer))
    finally:
        drop_database(dsn)


if __name__ == "__main__":
    main()
