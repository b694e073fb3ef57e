"""Generated repository functions vs. hand-written driver code returning the same dataclasses.

get-by-id and a 100-row list, on asyncpg (departments) and aiomysql (points), measured
interleaved in one run against throwaway databases on the local servers; prints the
ratio generated / hand-written (target <= 1.05).
Run: .venv/bin/python bench/codegen_overhead.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiomysql
import asyncpg

from services.departments.db import departments as dep_q
from services.departments.db.models import Department
from services.points.db import points as pts_q
from tools.local.databases import MYSQL_DEFAULT, PG_DEFAULT
from tools.local.dbadmin import drop_database
from tools.migrations import migrate

Op = Callable[[], Awaitable[Any]]


async def timed(op: Op, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await op()
    return (time.perf_counter() - start) / n


async def compare(label: str, generated: Op, hand: Op, rounds: int, per_round: int) -> None:
    for op in (generated, hand):  # warm up: prepared statement caches, pools
        await timed(op, 50)
    gen_times, hand_times = [], []
    for _ in range(rounds):  # interleaved, so drift hits both sides alike
        gen_times.append(await timed(generated, per_round))
        hand_times.append(await timed(hand, per_round))
    g, h = statistics.median(gen_times), statistics.median(hand_times)
    print(f"{label:34} generated {g * 1e6:7.1f} µs  hand {h * 1e6:7.1f} µs  ratio {g / h:5.3f}")


async def bench_asyncpg(dsn: str, rounds: int) -> None:
    conn = await asyncpg.connect(dsn)
    ids = [uuid.uuid4() for _ in range(1000)]
    await dep_q.copy_departments(
        conn,
        [
            dep_q.CopyDepartmentsParams(i, f"Department {n:04d}", f"{n} Main St")
            for n, i in enumerate(ids)
        ],
    )
    target = ids[500]

    async def hand_get() -> Department | None:
        row = await conn.fetchrow(dep_q.GET_DEPARTMENT, target)
        return None if row is None else Department(*row)

    async def hand_list() -> list[Department]:
        rows = await conn.fetch(dep_q.PLAIN_DEPARTMENTS_PAGE, 0, 100)
        return [Department(*r) for r in rows]

    await compare(
        "asyncpg  get by id", lambda: dep_q.get_department(conn, id=target), hand_get, rounds, 200
    )
    await compare(
        "asyncpg  list 100 rows",
        lambda: dep_q.plain_departments_page(conn, row_offset=0, row_limit=100),
        hand_list,
        rounds,
        100,
    )
    await conn.close()


async def bench_aiomysql(dsn: str, rounds: int) -> None:
    parts = urlsplit(dsn)
    conn = await aiomysql.connect(
        host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
        password=parts.password or "", db=parts.path.lstrip("/"), autocommit=True,
    )  # fmt: skip
    ids = [str(uuid.uuid4()) for _ in range(1000)]
    await pts_q.set_user_points(conn, [pts_q.SetUserPointsParams(i, n) for n, i in enumerate(ids)])
    batch = ids[:100]

    async def hand_get() -> int | None:
        async with conn.cursor() as cur:
            await cur.execute(pts_q.GET_USER_POINTS, (ids[500],))
            row = await cur.fetchone()
            return None if row is None else int(row[0])

    in_list = pts_q.GET_USER_LIST_POINTS.replace("/*SLICE:user_ids*/%s", ", ".join(["%s"] * 100))

    async def hand_list() -> list[pts_q.GetUserListPointsRow]:
        async with conn.cursor() as cur:
            await cur.execute(in_list, batch)
            return [pts_q.GetUserListPointsRow(*r) for r in await cur.fetchall()]

    await compare(
        "aiomysql get by id",
        lambda: pts_q.get_user_points(conn, user_id=ids[500]),
        hand_get,
        rounds,
        200,
    )
    await compare(
        "aiomysql list 100 rows (IN slice)",
        lambda: pts_q.get_user_list_points(conn, user_ids=batch),
        hand_list,
        rounds,
        100,
    )
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    suffix = os.getpid()
    pg = f"{os.environ.get('BENCH_PG', PG_DEFAULT)}/fixup_bench_dep_{suffix}"
    my = f"{os.environ.get('BENCH_MYSQL', MYSQL_DEFAULT)}/fixup_bench_pts_{suffix}"
    try:
        migrate.up("departments", pg)
        migrate.up("points", my)
        asyncio.run(bench_asyncpg(pg, args.rounds))
        asyncio.run(bench_aiomysql(my, args.rounds))
    finally:
        drop_database(pg)
        drop_database(my)


if __name__ == "__main__":
    main()
