"""The failover drill at the database: one writer per fault, through HAProxy (or `--route
multihost`), while the primary is lost, then what was acknowledged is counted.

    python -m tools.drills.failover_drill [--faults
    postmaster,member,quorum,mariadb,mariadb-freeze,mariadb-replica,redis] [--var var]

It starts the HA tier on free ports and, for each fault in turn (tools/drills/ha_faults.py,
failover_mariadb.py, failover_redis.py), prints the seconds until the first write
acknowledged after it, the failed writes by kind, the write latency p50/p99 before, during
and after, and the invariants: every acknowledged row present exactly once, no write
hanging past its statement timeout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

from tools.drills.drill_writers import CONNECT_TIMEOUT, FaultResult, PgWrites, drive
from tools.drills.failover_mariadb import MARIADB_FAULTS, drill_mariadb
from tools.drills.failover_redis import drill_redis
from tools.drills.ha_faults import FAULTS, wait_settled
from tools.ha import ha_tier
from tools.ha.ha_postgres import PgLayout, cluster_state
from tools.local.locks import LockBusy, file_lock

# the direct writer's: its psycopg client bounds a statement on the server's side only, so
# the faults that leave a server silent (a freeze, commits waiting for a standby) run
# under the story load alone, where every service bounds its commands (DB_COMMAND_TIMEOUT)
WRITER_FAULTS = ("postmaster", "member", "quorum", *MARIADB_FAULTS, "redis")


def drill_one(dsn: str, root: Path, layout: PgLayout, fault: str) -> FaultResult:
    wait_settled(layout)

    def count(acked_ids: list[int]) -> dict[int, int]:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
            rows = conn.execute(
                "SELECT id, count(*) FROM drill_writes WHERE id = ANY(%s) GROUP BY id",
                (acked_ids,),
            ).fetchall()
            conn.execute("TRUNCATE drill_writes")
        return {int(i): int(c) for i, c in rows}

    return drive(
        PgWrites(dsn),
        lambda: FAULTS[fault](root, layout),
        lambda: f"the members {cluster_state(layout)}",
        count,
        lambda: wait_settled(layout),
    )


def report(result: FaultResult) -> list[str]:
    verdict = "PASS" if result.passed else "FAIL"
    hang = "PASS" if result.longest_failure <= result.bound + 1 else "FAIL"
    return [
        f"fault: {result.fault}",
        f"  first acknowledged write after it: {result.recovery_seconds:.1f} s",
        f"  failed writes by kind: {result.failures or 'none'}",
        f"  write p50/p99 before {result.latency[0]}, during {result.latency[1]},"
        f" after {result.latency[2]}",
        f"  acknowledged writes lost: {len(result.lost)} (allowed {result.allowed_loss}),"
        f" duplicated: {len(result.duplicated)} ({verdict})",
        f"  longest failed write: {result.longest_failure:.1f} s (bound"
        f" {result.bound:.0f} s: {hang})",
    ]


ROUTES = ("haproxy", "multihost")


def route_dsn(layout: PgLayout, route: str) -> str:
    """The primary through HAProxy's one address, or libpq's read-write multi-host list."""
    if route == "multihost":
        return f"{layout.multi_host_dsn}/postgres?target_session_attrs=read-write"
    return f"{layout.dsn}/postgres"


def run(var: Path, faults: list[str], route: str = "haproxy") -> list[FaultResult]:
    """Each fault in turn, on a tier of the part it hits."""
    results = []
    pg_faults = [f for f in faults if f in FAULTS and f in WRITER_FAULTS]
    if pg_faults:
        try:  # a tier that failed half-way is stopped too
            layout = ha_tier.up(var, free_ports=True, parts=("postgres",)).postgres
            assert layout is not None
            dsn = route_dsn(layout, route)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS drill_writes (id bigint PRIMARY KEY)")
            for fault in pg_faults:
                results.append(drill_one(dsn, ha_tier.tier_root(var), layout, fault))
                print("\n".join(report(results[-1])), flush=True)
        finally:
            ha_tier.down(var)
    for fault in MARIADB_FAULTS:
        if fault in faults:
            results.append(drill_mariadb(var, fault))
            print("\n".join(report(results[-1])), flush=True)
    if "redis" in faults:
        try:
            ha_tier.up(var, free_ports=True, parts=("redis",))
            results.append(drill_redis(var))
            print("\n".join(report(results[-1])), flush=True)
        finally:
            ha_tier.down(var)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.drills.failover_drill", description=__doc__
    )
    parser.add_argument("--faults", default=",".join(WRITER_FAULTS))
    parser.add_argument("--var", type=Path, default=Path("var/failover-drill"))
    parser.add_argument("--route", choices=ROUTES, default="haproxy")
    args = parser.parse_args(argv)
    faults = args.faults.split(",")
    unknown = [f for f in faults if f not in WRITER_FAULTS]
    if unknown:
        print(f"failover drill: unknown fault {unknown[0]!r}; known: {', '.join(WRITER_FAULTS)}")
        return 2
    print(f"route to the primary: {args.route}", flush=True)
    try:
        with file_lock("failover-drill"):  # two drills would share var/failover-drill
            results = run(args.var, faults, args.route)
    except LockBusy as exc:
        print(f"failover drill: {exc}", file=sys.stderr)
        return 2
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
