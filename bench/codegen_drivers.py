"""The same generated repository (the departments db's queries) on asyncpg and on psycopg 3,
side by side: get-by-id, a 100-row page and a 1000-row COPY, interleaved in one run against
a throwaway database on the local PostgreSQL. The asyncpg side is the service's own code
(services/departments/db); the psycopg sides are generated into a temporary directory with
`driver: psycopg` (dataclasses) and `driver: psycopg, model_type: msgspec`.
Run: .venv/bin/python bench/codegen_drivers.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import psycopg

from services.departments.db import departments as asyncpg_q
from tools.local.databases import PG_DEFAULT
from tools.local.dbadmin import drop_database, psycopg_dsn
from tools.migrations import migrate
from tools.sqlc_run import run_sqlc, sql_dir, temp_config

Op = Callable[[], Awaitable[Any]]
VARIANTS = {"psycopg": {}, "psycopg+msgspec": {"model_type": "msgspec"}}


@contextmanager
def generated(options: dict[str, str]) -> Iterator[ModuleType]:
    """The departments db generated for psycopg (plus `options`) into a temporary package."""
    with tempfile.TemporaryDirectory() as tmp:
        package = f"bench_dep_{uuid.uuid4().hex[:8]}"

        def edit(config: dict[str, Any], _: str) -> None:
            codegen = config["sql"][0]["codegen"][0]
            codegen["out"] = os.path.relpath(Path(tmp) / package, sql_dir("departments"))
            codegen["options"] = {**codegen["options"], "driver": "psycopg", **options}

        with temp_config("departments", edit) as name:
            run_sqlc(sql_dir("departments"), config=name)
        sys.path.insert(0, tmp)
        try:
            yield importlib.import_module(f"{package}.departments")
        finally:
            sys.path.remove(tmp)


async def timed(op: Op, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await op()
    return (time.perf_counter() - start) / n


async def side_by_side(label: str, ops: dict[str, Op], rounds: int, per_round: int) -> None:
    for op in ops.values():  # warm up: statement caches (psycopg prepares after 5 runs)
        await timed(op, 20)
    times: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(rounds):  # interleaved, so drift hits every side alike
        for name, op in ops.items():
            times[name].append(await timed(op, per_round))
    base = statistics.median(times["asyncpg"])
    cells = [
        f"{name} {statistics.median(t) * 1e6:8.1f} µs ({statistics.median(t) / base:4.2f}x)"
        for name, t in times.items()
    ]
    print(f"{label:16} " + "  ".join(cells))


async def bench(dsn: str, modules: dict[str, ModuleType], rounds: int) -> None:
    pg = await asyncpg.connect(dsn)
    psy = await psycopg.AsyncConnection.connect(psycopg_dsn(dsn), autocommit=True)
    ids = [uuid.uuid4() for _ in range(1000)]
    rows = [
        asyncpg_q.CopyDepartmentsParams(i, f"Department {n:04d}", f"{n} Main St")
        for n, i in enumerate(ids)
    ]
    await asyncpg_q.copy_departments(pg, rows)
    target = ids[500]
    ops = {"asyncpg": lambda: asyncpg_q.get_department(pg, id=target)}
    for name, q in modules.items():
        ops[name] = lambda q=q: q.get_department(psy, id=target)
    await side_by_side("get by id", ops, rounds, 200)
    page = {"row_offset": 0, "row_limit": 100}
    ops = {"asyncpg": lambda: asyncpg_q.plain_departments_page(pg, **page)}
    for name, q in modules.items():
        ops[name] = lambda q=q: q.plain_departments_page(psy, **page)
    await side_by_side("list 100 rows", ops, rounds, 100)

    def copy_op(q: ModuleType, conn: Any) -> Op:
        async def run() -> None:
            fresh = [
                q.CopyDepartmentsParams(uuid.uuid4(), f"D {uuid.uuid4().hex}", r.address)
                for r in rows
            ]
            await q.copy_departments(conn, fresh)

        return run

    ops = {"asyncpg": copy_op(asyncpg_q, pg)}
    ops |= {name: copy_op(q, psy) for name, q in modules.items()}
    await side_by_side("copy 1000 rows", ops, max(3, rounds // 3), 3)
    await pg.close()
    await psy.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    pg = f"{os.environ.get('BENCH_PG', PG_DEFAULT)}/fixup_bench_drv_{os.getpid()}"
    try:
        migrate.up("departments", pg)
        with generated(VARIANTS["psycopg"]) as plain, generated(VARIANTS["psycopg+msgspec"]) as ms:
            asyncio.run(bench(pg, {"psycopg": plain, "psycopg+msgspec": ms}, args.rounds))
    finally:
        drop_database(pg)


if __name__ == "__main__":
    main()
