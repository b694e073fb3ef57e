"""The failover drill at the database: writes flowing through HAProxy while the primary is
lost, then what was acknowledged is counted.

    python -m tools.failover_drill [--faults postmaster,member,mariadb,redis] [--var var]

It starts the HA tier (tools/ha_tier.py) on free ports, keeps one writer committing rows
through the primary's one address, and for each fault in turn — the primary's postmaster
SIGKILLed (Patroni restarts it or fails over), a whole member killed (Patroni and its
PostgreSQL: the synchronous standby is promoted once the leader key expires), points'
MariaDB primary lost and its replica promoted, the Redis master SIGKILLed under a writer
going through Sentinel (tools/failover_redis.py) — prints the
seconds until the first write acknowledged after it, the failed writes by kind, the write
latency p50/p99 before, during and after, and the invariants: every acknowledged row
present exactly once (RPO 0), no write hanging past its statement timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tools import ha_mariadb, ha_network, ha_tier
from tools.drill_writers import (
    CONNECT_TIMEOUT,
    STATEMENT_TIMEOUT,
    Client,
    MariaWrites,
    PgWrites,
    Writer,
)
from tools.ha_mariadb import MariaLayout
from tools.ha_postgres import (
    MEMBERS,
    TTL,
    PgLayout,
    cluster_state,
    member_status,
    postmaster_pid,
    primary_member,
    sync_standby,
    wait_until,
)
from tools.local_servers import StartError
from tools.locks import LockBusy, file_lock
from tools.ports import free_ports

# the first write after a fault: the leader key's TTL, an election, HAProxy's checks
RECOVERY_LIMIT = 3 * TTL + 15
WARM_WRITES = 30
FREEZE = TTL + 10  # a frozen primary stays paused past its leader key's TTL
PARTITION = 30.0  # seconds the primary is cut off
QUORUM_LOSS = 20.0  # seconds etcd runs on one member of three
STANDBYS_LOST = 15.0  # seconds the primary has no standby at all
# a fault's whole course: its planned length, then the recovery of what it stopped
FAULT_LIMIT = max(FREEZE, PARTITION, QUORUM_LOSS, STANDBYS_LOST) + RECOVERY_LIMIT


def _latency(writes: list[tuple[int, float, float]]) -> str:
    ms = sorted((end - start) * 1000 for _, start, end in writes)
    if len(ms) < 2:
        return "n/a"
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"{statistics.median(ms):.1f}/{p99:.1f} ms"


def settled(layout: PgLayout) -> bool:
    """A primary whose own PostgreSQL streams to every other member, one of them
    synchronous (pg_stat_replication through its REST API: what the DCS says of a member
    that has just woken up or restarted can be a moment old), and named so in the DCS."""
    k = primary_member(layout)
    if k is None:
        return False
    replication = member_status(layout, k).get("replication")
    standbys = replication if isinstance(replication, list) else []
    streaming = [r for r in standbys if isinstance(r, dict) and r.get("state") == "streaming"]
    if len(streaming) != MEMBERS - 1 or not any(r.get("sync_state") == "sync" for r in streaming):
        return False
    # and Patroni has recorded that standby as the one it may promote (its /sync key): in
    # the moment between, strict mode has no candidate and a lost primary is not replaced
    return sync_standby(layout) is not None


def _kill_and_reap(pid: int) -> None:
    """SIGKILL, then reap it when it is ours: Patroni detaches its postmaster, so under a
    subreaper (the test suite) the orphan's parent is this process, and an unreaped zombie
    would look alive to Patroni, which would then never fail over."""
    with contextlib.suppress(ProcessLookupError):  # gone with its Patroni's group already
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@dataclass(frozen=True)
class Injected:
    """A fault as injected: what was done, and `heal()`, which blocks until the fault is
    over (a frozen member resumed, etcd's members back, a lost member started again); the
    drill runs it beside the load and starts its "after" phase once it has returned and
    the cluster has settled."""

    what: str
    heal: Callable[[], None]


def nothing_to_heal() -> None:
    return None


def _until(moment: float) -> None:
    """Wait out a fault's planned length (how long a member stays frozen or lost)."""
    time.sleep(max(0.0, moment - time.monotonic()))


def _groups(root: Path) -> list[int]:
    """The tier's process groups as its ledger has them now (etcd's, the members' Patroni,
    HAProxy's): a member started again has a new one."""
    return ha_tier.read_layout(root.parent)[1]


def _member_groups(root: Path, k: int) -> tuple[int, ...]:
    """Member k's process groups: those of its tini's session (tini's, Patroni's), and
    its postmaster's when one runs (Patroni starts it in a session of its own, led by a
    helper that has exited: the group is not the postmaster's pid; its backends are in it
    too)."""
    patroni = tuple(ha_tier.session_groups(_groups(root)[MEMBERS + k]))
    try:
        return *patroni, os.getpgid(postmaster_pid(root, k))
    except (OSError, ValueError):  # no postmaster.pid, or a stale one: none running
        return patroni


def _kill_member(root: Path, k: int) -> None:
    """Member k's Patroni and PostgreSQL SIGKILLed, the postmaster reaped when it is ours."""
    try:
        postmaster: int | None = postmaster_pid(root, k)
    except (OSError, ValueError):
        postmaster = None  # none running
    _signal_groups(_member_groups(root, k), signal.SIGKILL)
    if postmaster is not None:
        _kill_and_reap(postmaster)


def _signal_groups(groups: tuple[int, ...], sig: signal.Signals) -> None:
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, sig)


def _paused(groups: tuple[int, ...], seconds: float, what: str) -> Injected:
    """`groups` stopped (SIGSTOP) now, resumed by the heal once `seconds` have passed."""
    _signal_groups(groups, signal.SIGSTOP)
    resume_at = time.monotonic() + seconds

    def heal() -> None:
        _until(resume_at)
        _signal_groups(groups, signal.SIGCONT)

    return Injected(what, heal)


def _the_primary(layout: PgLayout) -> int:
    k = primary_member(layout)
    if k is None:
        raise StartError(f"no primary to inject a fault into: {cluster_state(layout)}")
    return k


def kill_postmaster(root: Path, layout: PgLayout) -> Injected:
    k = _the_primary(layout)
    _kill_and_reap(postmaster_pid(root, k))
    return Injected(f"pg{k}'s postmaster SIGKILLed", nothing_to_heal)


def kill_member(root: Path, layout: PgLayout) -> Injected:
    k = _the_primary(layout)
    _kill_member(root, k)

    def heal() -> None:  # once another member is primary: started at once, it would still
        # hold its own unexpired leader key and simply carry on as the primary
        wait_until(lambda: primary_member(layout) not in (None, k), "a new primary", FAULT_LIMIT)
        ha_tier.restart_members(root.parent)

    return Injected(f"member pg{k} killed (Patroni and PostgreSQL)", heal)


def freeze_member(root: Path, layout: PgLayout) -> Injected:
    """The whole primary member paused past its leader key's TTL (a paused VM, a stalled
    disk), then resumed: it must find the standby promoted and follow it, never take the
    leader back nor acknowledge a write of its own on waking."""
    k = _the_primary(layout)
    what = f"member pg{k} frozen (SIGSTOP) for {FREEZE:.0f} s, then resumed"
    return _paused(_member_groups(root, k), FREEZE, what)


def partition_member(root: Path, layout: PgLayout) -> Injected:
    """The primary member cut off from everything (etcd, the other members, HAProxy) for
    PARTITION seconds, then healed: on its side nothing can be acknowledged (its standby is
    out of reach) and its Patroni, reaching neither etcd nor every member, demotes it; on
    the other side the standby is promoted once the leader key expires."""
    if layout.net is None:
        raise StartError("a partition needs the members on hosts of their own (--isolated)")
    net = layout.net
    k = _the_primary(layout)
    ha_network.cut(net, k)
    heal_at = time.monotonic() + PARTITION

    def heal() -> None:
        _until(heal_at)
        ha_network.heal(net, k)

    return Injected(f"member pg{k} cut off from the network for {PARTITION:.0f} s, healed", heal)


def lose_quorum(root: Path, layout: PgLayout) -> Injected:
    """etcd at 1 of 3 members (two frozen): no quorum, so no leader key can be renewed;
    in failsafe mode the primary, still reaching every member, keeps writing."""
    lost = tuple(_groups(root)[1:MEMBERS])  # etcd's groups come first: all but one
    return _paused(lost, QUORUM_LOSS, f"etcd at 1 of 3 members for {QUORUM_LOSS:.0f} s")


def lose_standbys(root: Path, layout: PgLayout) -> Injected:
    """Both standbys killed (Patroni and PostgreSQL): in strict synchronous mode the
    primary acknowledges nothing until one is back; started again after STANDBYS_LOST."""
    k = _the_primary(layout)
    for other in (m for m in range(MEMBERS) if m != k):
        _kill_member(root, other)
    back_at = time.monotonic() + STANDBYS_LOST

    def heal() -> None:
        _until(back_at)
        ha_tier.restart_members(root.parent)

    return Injected(f"both standbys of pg{k} killed for {STANDBYS_LOST:.0f} s", heal)


# the direct writer's: its psycopg client bounds a statement on the server's side only, so
# the faults that leave a server silent (a freeze, commits waiting for a standby) run
# under the story load alone, where every service bounds its commands (DB_COMMAND_TIMEOUT)
WRITER_FAULTS = ("postmaster", "member", "quorum", "mariadb", "redis")
FAULTS = {
    "postmaster": kill_postmaster,
    "member": kill_member,
    "freeze": freeze_member,
    "partition": partition_member,
    "quorum": lose_quorum,
    "standbys": lose_standbys,
}


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


class Healing:
    """An injected fault's heal() in a thread of its own, beside the load; `join()` waits
    for it (bounded) and raises what it raised."""

    def __init__(self, injected: Injected) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(injected.heal,), daemon=True)
        self.thread.start()

    def _run(self, heal: Callable[[], None]) -> None:
        try:
            heal()
        except BaseException as exc:  # handed to join()'s caller
            self.error = exc

    def join(self, what: str) -> None:
        self.thread.join(FAULT_LIMIT)
        if self.thread.is_alive():
            raise StartError(f"{what} not over within {FAULT_LIMIT:.0f} s")
        if self.error is not None:
            raise StartError(f"healing {what}: {self.error}") from self.error


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


def wait_settled(layout: PgLayout) -> None:
    """Every member running with a synchronous standby named: a fault lands on such a
    cluster (Patroni promotes only that standby, so a fault before it is named waits for a
    human), and the load after a fault runs on one again."""
    wait_until(
        lambda: settled(layout), "every member running with a sync standby", 2 * RECOVERY_LIMIT
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
            _kill_and_reap(pids[0])
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
