"""The failover drill at the database: writes flowing through HAProxy while the primary is
lost, then what was acknowledged is counted.

    python -m tools.failover_drill [--faults postmaster,member] [--var var]

It starts the HA tier (tools/ha_tier.py) on free ports, keeps one writer committing rows
through the primary's one address, and for each fault in turn — the primary's postmaster
SIGKILLed (Patroni restarts it or fails over), a whole member killed (Patroni and its
PostgreSQL: the synchronous standby is promoted once the leader key expires) — prints the
seconds until the first write acknowledged after it, the failed writes by kind, the write
latency p50/p99 before, during and after, and the invariants: every acknowledged row
present exactly once (RPO 0), no write hanging past its statement timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tools import ha_tier
from tools.ha_postgres import (
    MEMBERS,
    TTL,
    PgLayout,
    cluster_state,
    postmaster_pid,
    primary_member,
    sync_standby,
    wait_until,
)
from tools.local_servers import StartError

STATEMENT_TIMEOUT = 3.0  # a write's bound: past it, a failure counted, never a hang
CONNECT_TIMEOUT = 2
# the first write after a fault: the leader key's TTL, an election, HAProxy's checks
RECOVERY_LIMIT = 3 * TTL + 15
WARM_WRITES = 30


@dataclass
class Writer:
    """One client committing numbered rows one by one, reconnecting after any failure."""

    dsn: str
    acked: list[tuple[int, float, float]] = field(default_factory=list)  # id, start, end
    failures: Counter[str] = field(default_factory=Counter)
    longest_failure: float = 0.0
    failed_at: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        n = 0
        while not self.stop.is_set():
            n += 1
            began = time.monotonic()
            try:
                if conn is None:
                    conn = psycopg.connect(
                        self.dsn,
                        autocommit=True,
                        connect_timeout=CONNECT_TIMEOUT,
                        options=f"-c statement_timeout={int(STATEMENT_TIMEOUT * 1000)}",
                    )
                conn.execute("INSERT INTO drill_writes (id) VALUES (%s)", (n,))
                self.acked.append((n, began, time.monotonic()))
            except psycopg.Error as exc:
                self.failures[type(exc).__name__] += 1
                self.failed_at.append(began)
                self.longest_failure = max(self.longest_failure, time.monotonic() - began)
                if conn is not None:
                    conn.close()
                conn = None
                self.stop.wait(0.05)  # a retry's pause, not a synchronisation
        if conn is not None:
            conn.close()

    def first_failure_after(self, moment: float) -> float | None:
        return next((t for t in self.failed_at if t > moment), None)

    def recovered_since(self, moment: float) -> bool:
        """A write acknowledged after the first failure that followed `moment` (or after
        `moment` once a second has passed with no failure at all)."""
        outage = self.first_failure_after(moment)
        if outage is None:
            return time.monotonic() - moment > 1.0 and self.acked_after(moment) > 0
        return self.acked_after(outage) > 0

    def acked_after(self, moment: float) -> int:
        return sum(1 for _, start, _ in self.acked if start > moment)


def _latency(writes: list[tuple[int, float, float]]) -> str:
    ms = sorted((end - start) * 1000 for _, start, end in writes)
    if len(ms) < 2:
        return "n/a"
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"{statistics.median(ms):.1f}/{p99:.1f} ms"


def settled(layout: PgLayout) -> bool:
    members = cluster_state(layout)
    running = [m for m in members if m.get("state") in ("running", "streaming")]
    return len(running) == MEMBERS and sync_standby(layout) is not None


def _kill_and_reap(pid: int) -> None:
    """SIGKILL, then reap it when it is ours: Patroni detaches its postmaster, so under a
    subreaper (the test suite) the orphan's parent is this process, and an unreaped zombie
    would look alive to Patroni, which would then never fail over."""
    os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def kill_postmaster(root: Path, layout: PgLayout, groups: list[int]) -> str:
    k = primary_member(layout)
    assert k is not None, "no primary to kill"
    _kill_and_reap(postmaster_pid(root, k))
    return f"pg{k}'s postmaster SIGKILLed"


def kill_member(root: Path, layout: PgLayout, groups: list[int]) -> str:
    k = primary_member(layout)
    assert k is not None, "no primary to kill"
    postmaster = postmaster_pid(root, k)
    os.killpg(groups[MEMBERS + k], signal.SIGKILL)  # patroni (groups: etcd, patroni, haproxy)
    _kill_and_reap(postmaster)
    return f"member pg{k} killed (Patroni and PostgreSQL)"


FAULTS = {"postmaster": kill_postmaster, "member": kill_member}


@dataclass(frozen=True)
class FaultResult:
    fault: str
    recovery_seconds: float
    failures: dict[str, int]
    latency: tuple[str, str, str]  # before, during, after
    lost: list[int]
    duplicated: list[int]
    longest_failure: float


def drill_one(dsn: str, root: Path, layout: PgLayout, groups: list[int], fault: str) -> FaultResult:
    # a fault lands on a settled cluster: every member up, a synchronous standby named
    # (Patroni promotes only that one, so a fault before it is named waits for a human)
    wait_until(
        lambda: settled(layout), "every member running with a sync standby", 2 * RECOVERY_LIMIT
    )
    writer = Writer(dsn)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(writer.acked) >= WARM_WRITES, "warm-up writes", RECOVERY_LIMIT)
        killed_at = time.monotonic()
        what = FAULTS[fault](root, layout, groups)
        after = f"a write after {what}"
        wait_until(lambda: writer.recovered_since(killed_at), after, RECOVERY_LIMIT)
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
        raise StartError(
            f"{exc}; failed writes {dict(writer.failures)}, the members {cluster_state(layout)}"
        ) from None
    finally:
        writer.stop.set()
        thread.join(STATEMENT_TIMEOUT + CONNECT_TIMEOUT + 5)
    acked_ids = [n for n, _, _ in writer.acked]
    with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
        rows = conn.execute(
            "SELECT id, count(*) FROM drill_writes WHERE id = ANY(%s) GROUP BY id", (acked_ids,)
        ).fetchall()
        conn.execute("TRUNCATE drill_writes")
    present = {int(i): int(c) for i, c in rows}
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


def report(result: FaultResult) -> list[str]:
    verdict = "PASS" if not result.lost and not result.duplicated else "FAIL"
    hang = "PASS" if result.longest_failure <= STATEMENT_TIMEOUT + CONNECT_TIMEOUT + 1 else "FAIL"
    return [
        f"fault: {result.fault}",
        f"  first acknowledged write after it: {result.recovery_seconds:.1f} s",
        f"  failed writes by kind: {result.failures or 'none'}",
        f"  write p50/p99 before {result.latency[0]}, during {result.latency[1]},"
        f" after {result.latency[2]}",
        f"  acknowledged writes lost: {len(result.lost)}, duplicated: {len(result.duplicated)}"
        f" ({verdict})",
        f"  longest failed write: {result.longest_failure:.1f} s (bound"
        f" {STATEMENT_TIMEOUT + CONNECT_TIMEOUT:.0f} s: {hang})",
    ]


ROUTES = ("haproxy", "multihost")


def route_dsn(layout: PgLayout, route: str) -> str:
    """The primary through HAProxy's one address, or libpq's multi-host list that tries
    each member until one takes writes (target_session_attrs=read-write)."""
    if route == "multihost":
        return f"{layout.multi_host_dsn}/postgres?target_session_attrs=read-write"
    return f"{layout.dsn}/postgres"


def run(var: Path, faults: list[str], route: str = "haproxy") -> list[FaultResult]:
    layout = ha_tier.up(var, free_ports=True)
    try:
        _, groups = ha_tier.read_layout(var)
        dsn = route_dsn(layout, route)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS drill_writes (id bigint PRIMARY KEY)")
        results = []
        for fault in faults:
            results.append(drill_one(dsn, var / "ha", layout, groups, fault))
            for line in report(results[-1]):
                print(line, flush=True)
            if fault == "member":  # the killed member comes back as a replica
                ha_tier.restart_members(var)
        return results
    finally:
        ha_tier.down(var)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.failover_drill", description=__doc__)
    parser.add_argument("--faults", default="postmaster,member")
    parser.add_argument("--var", type=Path, default=Path("var/failover-drill"))
    parser.add_argument("--route", choices=ROUTES, default="haproxy")
    args = parser.parse_args(argv)
    faults = args.faults.split(",")
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        print(f"failover drill: unknown fault {unknown[0]!r}; known: {', '.join(FAULTS)}")
        return 2
    print(f"route to the primary: {args.route}", flush=True)
    results = run(args.var, faults, args.route)
    return 0 if all(not r.lost and not r.duplicated for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
