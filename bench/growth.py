"""The users list as the table grows: 10^3, 10^5, 10^6 users (one table, grown in place
with INSERT ... SELECT generate_series, so the big size is built once per run).

At each size, interleaved, on one pooled connection (prepared statements, as in the
service), with the filter of a moderator's screen (role = PROVIDER, a quarter of the rows):
  page 1      the generated ListUsers, ORDER BY last_name, OFFSET 0
  deep page   the same at OFFSET = half the filtered set (what ?page=N costs)
  keyset      the same after the deep page's (last_name, id): what `?cursor=` runs
  search      the generated ListUsers with a trigram search matching a few rows
  statistics  the generated UserStatisticsSummary: what the list returns without a search,
              from the summary the writes keep (ADR 0023); checked equal to the scan
  statistics scan  the generated UserStatistics over the filtered set (the seed's way, and
              the service's with a search: grows with the set)
EXPLAIN (of the prepared statement, after the executions) shows which index each uses,
and pg_prepared_statements how many custom vs generic plans PostgreSQL chose for the
`$n IS NULL OR ...` filters. Targets (issue 44): page 1, keyset and statistics <= 2 x
from 10^3 to 10^6.
Run: .venv/bin/python -m bench.growth [--sizes 1000,100000,1000000] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from typing import Any

import asyncpg

from bench.common import interleaved, ratio, write_figures
from lib.db.connecting import connect
from lib.logging import configure_logging
from services.users.db import users as q
from services.users.db.models import UserRole
from tools.local.databases import PG_DEFAULT
from tools.local.dbadmin import drop_database
from tools.migrations import migrate

FILTERS: dict[str, Any] = {
    "role": UserRole.PROVIDER,
    "department_id": None,
    "verified": None,
    "search": None,
}
# n -> a user; last names are a hash of n so the order is not the insertion order
GROW = """
INSERT INTO users (email, password_hash, first_name, last_name, phone_number, age, salary,
                   role, verified)
SELECT 'user' || n || '@example.com', 'x', 'First' || n,
       'Last' || lpad(((n * 7919) % 1000003)::text, 7, '0'), '+1 555 0100', 18 + n % 53,
       30000 + (n * 7919) % 90000,
       (ARRAY['CUSTOMER','PROVIDER','MODERATOR','ADMIN']::user_role[])[1 + n % 4], n % 3 = 0
FROM generate_series($1::bigint, $2::bigint) AS n
"""


LIST_USERS = q.LIST_USERS["last_name", "asc"]  # the statement these pages run
NO_CURSOR = (None, None)  # ListUsersByLastNameAsc's after_key, after_tie: the first page


def after(cursor: Any) -> tuple[Any, ...]:
    return (cursor[0], cursor[1])


INDEXES = """
SELECT i.relname, pg_get_indexdef(x.indexrelid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = 'users'::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
"""


async def grow(conn: asyncpg.Connection, built: int, size: int) -> None:
    """Users built+1..size. A big step drops the secondary indexes and builds them again
    afterwards (one sort per index instead of a million inserts into each; the trigram
    GIN index above all); the definitions are the migration's, read back from the catalog."""
    await conn.execute("SET maintenance_work_mem = '256MB'; SET synchronous_commit = off")
    indexes = await conn.fetch(INDEXES) if size - built > 50_000 else []
    for name, _ in indexes:
        await conn.execute(f'DROP INDEX "{name}"')
    await conn.execute(GROW, built + 1, size)
    for _, definition in indexes:
        await conn.execute(definition)
    await conn.execute("ANALYZE users")


def plan_nodes(plan: dict[str, Any]) -> list[str]:
    """'Node Type [on index]' of every node of an EXPLAIN (FORMAT JSON) plan."""
    label = plan["Node Type"] + (f" {plan['Index Name']}" if "Index Name" in plan else "")
    return [label] + [n for child in plan.get("Plans", []) for n in plan_nodes(child)]


def literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


async def explain(conn: asyncpg.Connection, name: str, *args: Any) -> list[str]:
    """The plan of the named prepared statement for these arguments (EXPLAIN EXECUTE: the
    plan the cache would use, custom or generic)."""
    values = ", ".join(literal(a) for a in args)  # EXECUTE takes no bind parameters
    rows = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE {name}({values})")
    return plan_nodes(json.loads(rows)[0]["Plan"])


async def plans_of(conn: asyncpg.Connection, sql: str) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
        sql,
    )
    return {"generic": row["generic_plans"], "custom": row["custom_plans"]} if row else {}


async def measure(dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",")]
    db = await connect(dsn, min_size=1, max_size=2, reset=False)
    admin = await asyncpg.connect(dsn)
    out: dict[str, Any] = {"sizes": {}}
    built = 0
    try:
        for size in sizes:
            started = time.perf_counter()
            await grow(admin, built, size)
            built = size
            build_s = time.perf_counter() - started
            filtered = size // 4
            async with db.acquire() as conn:
                cursor = await conn.fetchrow(
                    "SELECT last_name, id FROM users WHERE role = 'PROVIDER' "
                    "ORDER BY last_name, id OFFSET $1 LIMIT 1",
                    filtered // 2,
                )
                target = await conn.fetchval(
                    "SELECT last_name FROM users OFFSET $1 LIMIT 1", size // 3
                )

                async def page1() -> Any:
                    return await q.list_users(
                        conn,
                        **FILTERS,
                        orderby="last_name",
                        sort="asc",
                        row_offset=0,
                        row_limit=50,
                    )

                # (each size's closures run before the next size rebinds what they read)
                async def deep() -> Any:
                    return await q.list_users(
                        conn,
                        **FILTERS,
                        orderby="last_name",
                        sort="asc",
                        row_offset=filtered // 2,  # noqa: B023
                        row_limit=50,
                    )

                async def keyset() -> Any:  # what `?cursor=` runs: the generated ListUsers
                    return await q.list_users(
                        conn,
                        **FILTERS,
                        orderby="last_name",
                        sort="asc",
                        row_offset=0,
                        row_limit=50,
                        after=(cursor[0], cursor[1]),  # noqa: B023
                    )

                async def search() -> Any:
                    return await q.list_users(
                        conn,
                        role=None,
                        department_id=None,
                        verified=None,
                        search=target,  # noqa: B023
                        orderby="last_name",
                        sort="asc",
                        row_offset=0,
                        row_limit=50,
                    )

                async def scan() -> Any:  # the seed's statistics; the service's with a search
                    return await q.user_statistics(conn, **FILTERS)

                async def stats() -> Any:  # the service's: the summary the writes keep
                    return await q.user_statistics_summary(
                        conn, role=UserRole.PROVIDER, department_id=None, verified=None
                    )

                # the keyset page after the deep page's cursor is the deep page's next one
                deep_rows, key_rows = await deep(), await keyset()
                assert [r.id for r in deep_rows[1:]] == [r.id for r in key_rows[:49]]
                assert await stats() == q.UserStatisticsSummaryRow(*vars(await scan()).values())
                assert any(r.last_name == target for r in await search())
                # the millisecond queries many times a round, the scans a few times: the
                # machine is shared, and one sample of 1 ms is mostly scheduler noise
                warm = 6  # past PostgreSQL's 5 custom plans: the plan cache has decided
                timings = await interleaved(
                    {"page 1": page1, "keyset": keyset, "search": search, "statistics": stats},
                    rounds=args.rounds,
                    per_round=20,
                    warmup=warm,
                )
                timings |= await interleaved(
                    {"deep page": deep, "statistics scan": scan},
                    rounds=args.rounds,
                    per_round=2,
                    warmup=warm,
                )
                raw = conn  # the pooled asyncpg connection: its statement cache
                plans = {
                    "ListUsers": await plans_of(raw, LIST_USERS),
                    "UserStatistics": await plans_of(raw, q.USER_STATISTICS),
                }
                named = {
                    r["statement"]: r["name"]
                    for r in await raw.fetch("SELECT name, statement FROM pg_prepared_statements")
                }
                pl = named.get(LIST_USERS)
                explains = {
                    "page 1": await explain(
                        raw, pl, "PROVIDER", None, None, None, 0, 50, *NO_CURSOR
                    )
                    if pl
                    else [],
                    "search": await explain(raw, pl, None, None, None, target, 0, 50, *NO_CURSOR)
                    if pl
                    else [],
                    "keyset": await explain(
                        raw, pl, "PROVIDER", None, None, None, 0, 50, *after(cursor)
                    )
                    if pl
                    else [],
                }
            out["sizes"][str(size)] = {
                "build_s": round(build_s, 1),
                "ms": {name: round(t.wall_us / 1000, 2) for name, t in timings.items()},
                "plans": plans,
                "explain": explains,
            }
            print(
                f"  {size:>9} users (built in {build_s:5.1f} s): "
                + "  ".join(f"{n} {t.wall_us / 1000:.2f} ms" for n, t in timings.items())
            )
            print(f"            plans {plans}; page 1: {explains['page 1']}")
            print(f"            search: {explains['search']}; keyset: {explains['keyset']}")
    finally:
        await admin.close()
        await db.close()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.growth")
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    configure_logging("bench", "WARNING")
    name = f"fixup_bench_growth_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    dsn = f"{os.environ.get('BENCH_PG', PG_DEFAULT)}/{name}"
    print("users list as the table grows (median ms of interleaved rounds, one connection):")
    try:
        migrate.up("users", dsn)
        figures = asyncio.run(measure(dsn, args))
    finally:
        drop_database(dsn)
    sizes = figures["sizes"]
    first, last = sizes[min(sizes, key=int)], sizes[max(sizes, key=int)]
    figures["growth"] = {name: ratio(last["ms"][name], first["ms"][name]) for name in first["ms"]}
    figures["statistics_ms_at_largest"] = last["ms"]["statistics"]
    span = f"{min(sizes, key=int)} → {max(sizes, key=int)} users"
    figures["rows"] = [
        [
            f"users list {name} as users grow, {span} (ms)",
            " → ".join(f"{sizes[s]['ms'][name]:.1f}" for s in sizes)
            + f" ({figures['growth'][name]:.1f}x)",
        ]
        for name in first["ms"]
    ]
    print("  growth " + ", ".join(f"{k} {v:.1f}x" for k, v in figures["growth"].items()))
    write_figures(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
