"""Every keyset list as its table grows (10^3 -> 10^6 rows; bench.growth does the users
list): the catalog's services, orders, jobs and a provider's reviews.

Each list's table is grown in place (INSERT ... SELECT generate_series; a big step drops
the secondary indexes and builds them again afterwards, as bench.growth does). At each
size, interleaved, on one pooled connection (prepared statements, as in the service),
each list's generated query as its handler calls it:
  page 1       the first page (what a list without `page` or `cursor` reads)
  cursor page  the page after a `(key, id)` half-way through: what `?cursor=` runs
  offset page  the same page by OFFSET: what `?page=N` would cost there
The cursor page is checked to be the offset page's next rows. Target (issue 44): every
list's cursor page <= 2 x from 10^3 to 10^6.
Run: .venv/bin/python -m bench.growth_lists [--sizes 1000,100000,1000000] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench.common import interleaved, ratio, write_figures
from lib.db.connecting import connect
from lib.logging import configure_logging
from services.catalog.db import services as catalog_q
from services.orders.db import jobs as jobs_q
from services.orders.db import orders as orders_q
from services.orders.db import reviews as reviews_q
from tools.local.databases import PG_DEFAULT
from tools.local.dbadmin import drop_database
from tools.migrations import migrate

LIMIT = 50
PROVIDER = uuid.UUID("00000000-0000-4000-8000-0000000b0b0b")  # every job's and review's
ADMIN = uuid.UUID("00000000-0000-4000-8000-00000000ad00")
SUBCATEGORY = """
WITH t AS (INSERT INTO category_types (name) VALUES ('Bench') RETURNING id),
     c AS (INSERT INTO categories (type_id, name) SELECT id, 'Bench' FROM t RETURNING id)
INSERT INTO subcategories (category_id, name) SELECT id, 'Bench' FROM c RETURNING id
"""
# names are a hash of n so the order is not the insertion order
SERVICES = """
INSERT INTO services (subcategory_id, name, base_price)
SELECT (SELECT id FROM subcategories LIMIT 1),
       'Service ' || lpad(((n * 7919) % 1000003)::text, 7, '0') || ' ' || n,
       (n * 7919) % 100000 / 100.0
FROM generate_series($1::bigint, $2::bigint) AS n
"""
# ids derived from n link an order, its offer, its job and the job's review
ORDERS = [
    """INSERT INTO orders (id, customer_id, service_id, description, address, time_start,
                           time_end, created_at)
       SELECT md5('o' || n)::uuid, md5('c' || n % 1000)::uuid, md5('s' || n % 100)::uuid,
              'Order ' || n, 'Street ' || n, now(), now() + interval '1 hour',
              now() - make_interval(secs => n)
       FROM generate_series($1::bigint, $2::bigint) AS n""",
    """INSERT INTO offers (id, order_id, provider_id, price, currency, book_time, created_at)
       SELECT md5('f' || n)::uuid, md5('o' || n)::uuid, $3, 10 + n % 90, 'USD', now(),
              now() - make_interval(secs => n)
       FROM generate_series($1::bigint, $2::bigint) AS n""",
    """INSERT INTO jobs (id, order_id, offer_id, customer_id, provider_id, created_at)
       SELECT md5('j' || n)::uuid, md5('o' || n)::uuid, md5('f' || n)::uuid,
              md5('c' || n % 1000)::uuid, $3, now() - make_interval(secs => n)
       FROM generate_series($1::bigint, $2::bigint) AS n""",
    """INSERT INTO reviews (job_id, customer_id, provider_id, rating, created_at)
       SELECT md5('j' || n)::uuid, md5('c' || n % 1000)::uuid, $3, 1 + n % 5,
              now() - make_interval(secs => n)
       FROM generate_series($1::bigint, $2::bigint) AS n""",
]
INDEXES = """
SELECT i.relname, pg_get_indexdef(x.indexrelid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = ANY($1::regclass[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
"""
Lister = Callable[..., Awaitable[list[Any]]]


@dataclass(frozen=True)
class List:
    name: str  # "orders"
    db: str  # its database
    tables: tuple[str, ...]  # what grows (ANALYZEd, indexes rebuilt)
    half: str  # SQL: the (key, id) of the row half-way through its ordering ($1: offset)
    read: Callable[[Any, int, Any], Awaitable[list[Any]]]  # (conn, offset, after)


def position(after: Any) -> Any:
    """The generated list's `after`: the (key, id) a cursor names, or None from the start."""
    return None if not after else (after[0], after[1])


async def services(conn: Any, offset: int, after: Any) -> list[Any]:
    return await catalog_q.list_services(
        conn,
        subcategory_id=None,
        archived=False,
        orderby="name",
        sort="asc",
        after=position(after),
        row_offset=offset,
        row_limit=LIMIT,
    )


async def orders(conn: Any, offset: int, after: Any) -> list[Any]:
    return await orders_q.list_orders(
        conn,
        see_all=True,
        viewer_id=ADMIN,
        offered=[],
        status=None,
        service_id=None,
        search=None,
        orderby="created_at",
        sort="desc",
        after=position(after),
        row_offset=offset,
        row_limit=LIMIT,
    )


async def jobs(conn: Any, offset: int, after: Any) -> list[Any]:
    return await jobs_q.list_jobs(
        conn,
        see_all=True,
        viewer_id=ADMIN,
        status=None,
        orderby="created_at",
        sort="desc",
        after=position(after),
        row_offset=offset,
        row_limit=LIMIT,
    )


async def reviews(conn: Any, offset: int, after: Any) -> list[Any]:
    return await reviews_q.list_provider_reviews(
        conn,
        provider_id=PROVIDER,
        orderby="created_at",
        sort="desc",
        after=position(after),
        row_offset=offset,
        row_limit=LIMIT,
    )


def desc_half(table: str) -> str:
    return f"SELECT created_at, id FROM {table} ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1"


LISTS = [
    List(
        "services",
        "catalog",
        ("services",),
        "SELECT name, id FROM services ORDER BY name, id OFFSET $1 LIMIT 1",
        services,
    ),
    List("orders", "orders", ("orders",), desc_half("orders"), orders),
    List("jobs", "orders", ("offers", "jobs"), desc_half("jobs"), jobs),
    List("reviews", "orders", ("reviews",), desc_half("reviews"), reviews),
]


async def grow(conn: asyncpg.Connection, db: str, built: int, size: int) -> None:
    """Rows built+1..size of `db`'s lists; foreign keys are not checked (the rows are
    made consistent), the secondary indexes rebuilt after a big step, then VACUUM: the
    first reads of fresh rows would otherwise write their hint bits."""
    tables = [t for spec in LISTS if spec.db == db for t in spec.tables]
    if db == "orders":
        tables = ["orders", *tables[1:]]  # orders first: the others point at them
    await conn.execute(
        "SET maintenance_work_mem = '256MB'; SET synchronous_commit = off; "
        "SET session_replication_role = replica"
    )
    indexes = await conn.fetch(INDEXES, tables) if size - built > 50_000 else []
    for name, _ in indexes:
        await conn.execute(f'DROP INDEX "{name}"')
    if db == "catalog":
        if built == 0:
            await conn.execute(SUBCATEGORY)
        await conn.execute(SERVICES, built + 1, size)
    else:
        for sql in ORDERS:
            await conn.execute(sql, built + 1, size, *([PROVIDER] if "$3" in sql else []))
    for _, definition in indexes:
        await conn.execute(definition)
    for table in tables:  # hint bits and the visibility map set, as autovacuum leaves them
        await conn.execute(f"VACUUM (ANALYZE) {table}")


async def measure_size(pools: dict[str, Any], size: int, rounds: int) -> dict[str, float]:
    """ms of each list's page 1, cursor page and offset page at this size."""
    ops: dict[str, Callable[[], Awaitable[Any]]] = {}
    deep: dict[str, Callable[[], Awaitable[Any]]] = {}
    async with contextlib.AsyncExitStack() as stack:
        conns = {db: await stack.enter_async_context(pool.acquire()) for db, pool in pools.items()}
        for spec in LISTS:
            conn = conns[spec.db]
            half = size // 2
            after = tuple(await conn.fetchrow(spec.half, half - 1))

            def bind(spec: List, conn: Any, offset: int, after: Any) -> Any:
                return lambda: spec.read(conn, offset, after)

            by_offset, by_cursor = (
                await spec.read(conn, half - 1, None),
                await spec.read(conn, 0, after),
            )
            assert [r.id for r in by_offset[1:]] == [r.id for r in by_cursor[: LIMIT - 1]]
            ops[f"{spec.name} page 1"] = bind(spec, conn, 0, None)
            ops[f"{spec.name} cursor page"] = bind(spec, conn, 0, after)
            deep[f"{spec.name} offset page"] = bind(spec, conn, half, None)
        warm = 6  # past PostgreSQL's 5 custom plans: the plan cache has decided
        timings = await interleaved(ops, rounds=rounds, per_round=20, warmup=warm)
        timings |= await interleaved(deep, rounds=rounds, per_round=2, warmup=warm)
    return {name: round(t.wall_us / 1000, 3) for name, t in timings.items()}


async def measure(dsns: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",")]
    pools = {
        db: await connect(dsn, min_size=1, max_size=2, reset=False) for db, dsn in dsns.items()
    }
    admins = {db: await asyncpg.connect(dsn) for db, dsn in dsns.items()}
    out: dict[str, Any] = {"sizes": {}}
    built = 0
    try:
        for size in sizes:
            started = time.perf_counter()
            for db, admin in admins.items():
                await grow(admin, db, built, size)
            built = size
            build_s = time.perf_counter() - started
            ms = await measure_size(pools, size, args.rounds)
            out["sizes"][str(size)] = {"build_s": round(build_s, 1), "ms": ms}
            print(
                f"  {size:>9} rows (built in {build_s:5.1f} s): "
                + "  ".join(f"{n} {t:.2f} ms" for n, t in ms.items())
            )
    finally:
        for admin in admins.values():
            await admin.close()
        for pool in pools.values():
            await pool.close()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.growth_lists")
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    configure_logging("bench", "WARNING")
    tag = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
    base = os.environ.get("BENCH_PG", PG_DEFAULT)
    dsns = {db: f"{base}/fixup_bench_lists_{db}_{tag}" for db in ("catalog", "orders")}
    print("every keyset list as its table grows (median ms of interleaved rounds):")
    try:
        for db, dsn in dsns.items():
            migrate.up(db, dsn)
        figures = asyncio.run(measure(dsns, args))
    finally:
        for dsn in dsns.values():
            drop_database(dsn)
    sizes = figures["sizes"]
    small, big = min(sizes, key=int), max(sizes, key=int)
    first, last = sizes[small]["ms"], sizes[big]["ms"]
    growth = {name: ratio(last[name], first[name]) for name in first}
    figures["growth"] = growth
    cursor = {n.removesuffix(" cursor page"): g for n, g in growth.items() if "cursor" in n}
    span = f"{small} → {big} rows"
    figures["rows"] = [
        [
            f"every list's next-cursor page as its table grows, {span} (growth)",
            ", ".join(f"{n} {g:.1f}x" for n, g in cursor.items())
            + f" (worst {max(cursor.values()):.1f}x)",
        ],
        *(
            [
                f"{name} as its table grows, {span} (ms)",
                " → ".join(f"{sizes[s]['ms'][name]:.2f}" for s in sizes)
                + f" ({growth[name]:.1f}x)",
            ]
            for name in first
        ),
    ]
    print("  growth " + ", ".join(f"{k} {v:.1f}x" for k, v in growth.items()))
    write_figures(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
