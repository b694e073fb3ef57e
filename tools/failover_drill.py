"""The failover drill at the database: writes flowing through HAProxy while the primary is
lost, then what was acknowledged is counted.

    python -m tools.failover_drill [--faults postmaster,member,quorum,mariadb,redis] [--var var]

It starts the HA tier (tools/ha_tier.py) on free ports, keeps one writer committing rows
through the primary's one address, and for each fault in turn (tools/ha_faults.py) — the
primary's postmaster SIGKILLed (Patroni restarts it or fails over), a whole member killed
(Patroni and its PostgreSQL: the synchronous standby is promoted once the leader key
expires), etcd at 1 of 3 members, points' MariaDB primary lost and its replica promoted,
the Redis master SIGKILLed under a writer going through Sentinel (tools/failover_redis.py)
— prints the
seconds until the first write acknowledged after it, the failed writes by kind, the write
latency p50/p99 before, during and after, and the invariants: every acknowledged row
present exactly once (RPO 0), no write hanging past its statement timeout.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tools import ha_mariadb, ha_tier
from tools.drill_writers import (
    CONNECT_TIMEOUT,
    STATEMENT_TIMEOUT,
    Client,
    MariaWrites,
    PgWrites,
    Writer,
)
from tools.ha_faults import (
    FAULT_LIMIT,
    FAULTS,
    RECOVERY_LIMIT,
    Healing,
    Injected,
    kill_and_reap,
    nothing_to_heal,
    wait_settled,
)
from tools.ha_mariadb import MariaLayout
from tools.ha_postgres import (
    PgLayout,
    cluster_state,
    wait_until,
)
from tools.local_servers import StartError
from tools.locks import LockBusy, file_lock
from tools.ports import free_ports

WARM_WRITES = 30


def _latency(writes: list[tuple[int, float, float]]) -> str:
    ms = sorted((end - start) * 1000 for _, start, end in writes)
    if len(ms) < 2:
        return "n/a"
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"{statistics.median(ms):.1f}/{p99:.1f} ms"


# the direct writer's: its psycopg client bounds a statement on the server's side only, so
# the faults that leave a server silent (a freeze, commits waiting for a standby) run
# under the story load alone, where every service bounds its commands (DB_COMMAND_TIMEOUT)
WRITER_FAULTS = ("postmaster", "member", "quorum", "mariadb", "redis")


@dataclass(frozen=True)
class FaultResult:
    fault: str
    recovery_seconds: float
    failures: dict[str, int]
    latency: tuple[str, str, str]  # before, during, after
    lost: list[int]
    duplicated: list[int]
    longest_failure: float
    bound: float = STATEMENT_TIMEOUT + CONNECT_TIMEOUT  # what no failed write may outlast
    allowed_loss: int = 0  # the databases: RPO 0; Redis: the one write in flight (async)

    @property
    def passed(self) -> bool:
        return len(self.lost) <= self.allowed_loss and not self.duplicated


def drive(
    client: Client,
    inject: Callable[[], Injected],
    diagnose: Callable[[], str],
    count: Callable[[list[int]], dict[int, int]],
    settle: Callable[[], None] = nothing_to_heal,
) -> FaultResult:
    """Writes flowing, the fault injected, writes flowing again, the fault healed and the
    cluster settled (`settle`); -> what the writer saw against what the database holds
    (`count`: acknowledged id -> rows present)."""
    writer = Writer(client)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(writer.acked) >= WARM_WRITES, "warm-up writes", RECOVERY_LIMIT)
        killed_at = time.monotonic()
        injected = inject()
        what = injected.what
        healing = Healing(injected)
        after = f"a write after {what}"
        wait_until(lambda: writer.recovered_since(killed_at), after, FAULT_LIMIT)
        healing.join(what)
        settle()
        # a backend outlives its postmaster for a moment: the outage begins at the first
        # write that failed after the kill, and ends at the next one acknowledged
        outage = writer.first_failure_after(killed_at)
        first = min((s for _, s, _ in writer.acked if s > (outage or killed_at)), default=None)
        recovered_at = time.monotonic()
        wait_until(
            lambda: writer.acked_after(recovered_at) >= WARM_WRITES,
            f"writes flowing again after {what}",
            RECOVERY_LIMIT,
        )
    except StartError as exc:
        raise StartError(f"{exc}; failed writes {dict(writer.failures)}; {diagnose()}") from None
    finally:
        writer.stop.set()
        thread.join(STATEMENT_TIMEOUT + CONNECT_TIMEOUT + 5)
    acked_ids = [n for n, _, _ in writer.acked]
    present = count(acked_ids)
    return FaultResult(
        fault=what,
        recovery_seconds=(first or killed_at) - killed_at,
        failures=dict(writer.failures),
        latency=(
            _latency([w for w in writer.acked if w[2] < killed_at]),
            _latency([w for w in writer.acked if killed_at <= w[1] < recovered_at]),
            _latency([w for w in writer.acked if w[1] >= recovered_at]),
        ),
        lost=[n for n in acked_ids if n not in present],
        duplicated=[n for n, c in present.items() if c > 1],
        longest_failure=writer.longest_failure,
    )


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


def drill_mariadb(var: Path) -> FaultResult:
    """points' MariaDB: the primary SIGKILLed, the replica promoted by tools/ha_mariadb.py
    at once (the scripted promotion), the writer moving to whichever address takes writes."""
    root = var / "ha-mariadb"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    layout = MariaLayout(*free_ports(2))
    pids = ha_mariadb.start(layout, root)
    try:
        with ha_mariadb.connect(layout.primary) as conn, conn.cursor() as cur:
            cur.execute("CREATE DATABASE drill")
            cur.execute("CREATE TABLE drill.drill_writes (id bigint PRIMARY KEY)")

        def inject() -> Injected:
            kill_and_reap(pids[0])
            took = ha_mariadb.promote(layout.replica)
            what = f"the MariaDB primary SIGKILLed, its replica promoted ({took:.1f} s)"
            return Injected(what, nothing_to_heal)

        def count(acked_ids: list[int]) -> dict[int, int]:
            with ha_mariadb.connect(layout.replica) as conn, conn.cursor() as cur:
                cur.execute("SELECT id, count(*) FROM drill.drill_writes GROUP BY id")
                return {int(i): int(c) for i, c in cur.fetchall()}

        return drive(
            MariaWrites((layout.primary, layout.replica), "drill"),
            inject,
            lambda: f"the replica's status {ha_mariadb.replica_status(layout.replica)}",
            count,
        )
    finally:
        for pid in reversed(pids):
            ha_tier.stop_group(pid)


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
    """The primary through HAProxy's one address, or libpq's multi-host list that tries
    each member until one takes writes (target_session_attrs=read-write)."""
    if route == "multihost":
        return f"{layout.multi_host_dsn}/postgres?target_session_attrs=read-write"
    return f"{layout.dsn}/postgres"


def run(var: Path, faults: list[str], route: str = "haproxy") -> list[FaultResult]:
    """Each fault in turn: the PostgreSQL ones on one HA tier, MariaDB's on its pair, Redis's
    on its master, replica and Sentinels."""
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
                results.append(drill_one(dsn, var / "ha", layout, fault))
                print("\n".join(report(results[-1])), flush=True)
        finally:
            ha_tier.down(var)
    if "mariadb" in faults:
        results.append(drill_mariadb(var))
        print("\n".join(report(results[-1])), flush=True)
    if "redis" in faults:
        from tools.failover_redis import drill_redis  # it builds on this module

        try:
            ha_tier.up(var, free_ports=True, parts=("redis",))
            results.append(drill_redis(var))
            print("\n".join(report(results[-1])), flush=True)
        finally:
            ha_tier.down(var)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.failover_drill", description=__doc__)
    parser.add_argument("--faults", default=",".join(WRITER_FAULTS))
    parser.add_argument("--var", type=Path, default=Path("var/failover-drill"))
    parser.add_argument("--route", choices=ROUTES, default="haproxy")
    args = parser.parse_args(argv)
    faults = args.faults.split(",")
    known = list(WRITER_FAULTS)
    unknown = [f for f in faults if f not in known]
    if unknown:
        print(f"failover drill: unknown fault {unknown[0]!r}; known: {', '.join(known)}")
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
