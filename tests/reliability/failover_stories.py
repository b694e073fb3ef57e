"""The failover drill under the release drill's story load (issue 50): every built HTTP
service on two replicas behind NGINX (tests/reliability/drill.py) on the HA tier of
tools/ha/ha_tier.py (the services through HAProxy's address of the primary, ADR 0033; points
on the MariaDB primary), whole stories and list reads running while a fault is injected; per
fault: the seconds until the first acknowledged write after it, the failed requests by kind
(only a 503 with Retry-After is allowed while a new primary is elected), p50/p99 before,
during and after, and the release drill's invariants plus chat gap-free and a revoked
session still refused (tests/reliability/revoked_session.py)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pymysql

from lib.auth.principal import Role
from tests import pg
from tests.e2e.gateway_stack import wait_until
from tests.reliability.awards import BATCH, POINTS_TIMEOUT, ledger
from tests.reliability.drill import Drill, start_drill
from tests.reliability.revoked_session import revoked_token, still_refused
from tests.reliability.test_release_drill import Load, invariants, ms, stories
from tests.reliability.test_restore_drill import GAPS
from tests.reliability.world import actor, catalog_service
from tools.drills.failover_mariadb import MARIADB_FAULTS
from tools.drills.failover_redis import kill_master
from tools.drills.ha_faults import (
    FAULT_LIMIT,
    FAULTS,
    RECOVERY_LIMIT,
    Injected,
    nothing_to_heal,
    settled,
)
from tools.ha import ha_tier
from tools.ha.data_tier_watch import DataTierWatch, Watched
from tools.ha.ha_mariadb import MariaLayout
from tools.ha.ha_postgres import PgLayout, primary_member
from tools.ha.ha_redis import RedisLayout, sentinels_ready
from tools.ha.run_ha import database_env
from tools.local.databases import get_database
from tools.local.dbadmin import mysql_connect
from tools.local.local_servers import StartError
from tools.local.local_servers import wait_until as wait_for_tier
from tools.local.service_process import PROCESS_MARGIN

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 3
PRIMARY_CHANGED = "PostgresPrimaryChanged"
# the faults after which another member may be primary (the alert is waited for); etcd's
# quorum loss and the standbys' loss keep the primary where it is
FAILS_OVER = ("postmaster", "member", "freeze", "partition")
ALLOWED = " 503 Retry-After"  # the one failure a client may see while a primary is elected


@dataclass(frozen=True)
class StoryFault:
    fault: str
    recovery_seconds: float
    allowed: dict[str, int]  # 503 + Retry-After, by method
    failed: dict[str, int]  # anything else
    latency: dict[str, str]  # phase -> "p50/p99 ms"
    held: dict[str, bool]
    alert: str = ""  # the "primary changed" alert at the webhook, when watched
    timeline: str = ""  # when the fault was injected and healed, for the logs beside it

    @property
    def passed(self) -> bool:
        return not self.failed and all(self.held.values())

    def lines(self) -> list[str]:
        return [
            f"fault: {self.fault}",
            *([f"  {self.timeline}"] if self.timeline else []),
            f"  first acknowledged write after it: {self.recovery_seconds:.1f} s",
            f"  503 + Retry-After (allowed): {self.allowed or 'none'};"
            f" failed otherwise: {self.failed or 'none'}",
            "  p50/p99 " + ", ".join(f"{k} {v} ms" for k, v in self.latency.items()),
            *(f"  {name}: {'PASS' if ok else 'FAIL'}" for name, ok in self.held.items()),
            *([f"  {self.alert}"] if self.alert else []),
        ]


@dataclass
class HaTier:
    """The running tier as the drill sees it: each database's DSN as the services get it
    (points' moves to the replica once it is promoted), the members' layout."""

    var: Path
    dsns: dict[str, str]
    layout: PgLayout
    redis: RedisLayout | None
    mariadb: MariaLayout | None

    def dsn(self, name: str) -> str:
        return self.dsns[get_database(name).env_var]

    def shared(self) -> dict[str, str]:
        """What every HTTP service gets besides its database: Redis through the Sentinels,
        and orders' relay on short leases (the release drill's awards settings): an award
        whose delivered mark a failover lost is delivered again once its lease expires,
        POINTS_TIMEOUT x (batch + 1), 42 s with the defaults, 1.5 s here."""
        relay = {"ORDERS_POINTS_TIMEOUT": str(POINTS_TIMEOUT), "ORDERS_OUTBOX_BATCH": str(BATCH)}
        return relay | ({"REDIS_SENTINELS": self.redis.sentinels_setting} if self.redis else {})


def tier_up(var: Path, parts: tuple[str, ...]) -> HaTier:
    """The tier's parts on free ports (PostgreSQL's members and points' MariaDB pair at
    least), every database of the registry migrated and seeded there (tools/local/seed.py in its
    own process: it reads the DSNs from its environment)."""
    tier = ha_tier.up(var, free_ports=True, parts=parts, isolated=True)  # for a partition
    seeding = subprocess.run(
        [sys.executable, "-m", "tools.local.seed", "--local-dev"],
        cwd=ROOT,
        env={**os.environ, **database_env(tier)},
        capture_output=True,
        text=True,
        timeout=RECOVERY_LIMIT * 4,
        check=False,
    )
    assert seeding.returncode == 0, seeding.stderr[-2000:]
    layout, _ = ha_tier.read_layout(var)
    return HaTier(var, database_env(tier), layout, tier.redis, tier.mariadb)


async def postgres_settled(tier: HaTier) -> None:
    """A fault lands on a settled cluster: every member up, a synchronous standby named."""
    await asyncio.to_thread(
        wait_for_tier,
        lambda: settled(tier.layout),
        "every member running with a sync standby",
        2 * RECOVERY_LIMIT,
    )


async def sentinels_settled(tier: HaTier) -> None:
    layout = tier.redis
    assert layout is not None, "the tier has no Redis"
    await asyncio.to_thread(
        wait_for_tier, lambda: sentinels_ready(layout), "3 Sentinels ready", RECOVERY_LIMIT
    )


async def nothing_to_wait_for(tier: HaTier) -> None:
    return None


async def postgres_fault(tier: HaTier, running: Drill, fault: str) -> Injected:
    return FAULTS[fault](ha_tier.tier_root(tier.var), tier.layout)


async def redis_fault(tier: HaTier, running: Drill, fault: str) -> Injected:
    layout = tier.redis
    assert layout is not None, "the tier has no Redis"
    _, groups = ha_tier.read_redis(tier.var)
    _, what = kill_master(layout, groups)
    return Injected(what, nothing_to_heal)


async def mariadb_fault(tier: HaTier, running: Drill, fault: str) -> Injected:
    """points' primary SIGKILLed (`mariadb-freeze`: frozen, then woken; `mariadb-replica`:
    its replica SIGKILLed instead) and nothing else: the pair's watcher promotes the
    replica, HAProxy's address (points' DSN) follows it, points is not restarted; healed
    once the old primary, started again, follows the new one read-only (the replica lost:
    the primary's commits go on alone, and it follows again; tools/drills/failover_mariadb.py)."""
    layout = tier.mariadb
    assert layout is not None, "the tier has no MariaDB pair"
    return await asyncio.to_thread(MARIADB_FAULTS[fault], tier.var, layout)


def first_award_after(tier: HaTier, since: datetime) -> float | None:
    """Seconds from `since` to the first award points committed after it (its ledger, read
    through its own address: the new primary once the address has moved); None while none
    is, or while the address reaches no server."""
    try:
        with (
            mysql_connect(tier.dsn("points"), database="fixup_points") as conn,
            conn.cursor() as cur,
        ):
            cur.execute(
                "SELECT min(created_at) FROM points_ledger WHERE created_at > %s",
                (since.replace(tzinfo=None),),
            )
            row = cur.fetchone()
    except (pymysql.MySQLError, OSError):
        return None
    first = row[0] if row else None
    return None if first is None else (first.replace(tzinfo=UTC) - since).total_seconds()


def award_keys_once(tier: HaTier) -> dict[str, bool]:
    """Every idempotency key of the points ledger (the new primary's) exactly once."""
    keys, _ = ledger(tier.dsn("points"))
    doubled = [key for key, n in keys.items() if n > 1]
    shown = f"{len(keys)} keys, doubled {doubled[:3]}"
    return {f"every award's key once in the new primary ({shown})": not doubled}


async def written_back(
    tier: HaTier, fault: str, load: Load, killed_at: float, since: datetime
) -> float | None:
    """The fault's recovery: for points' MariaDB the first award after the loss (the story
    load's writes go to PostgreSQL; awards reach points through orders' relay), for the
    others the first write acknowledged after the first failure (`recovery`)."""
    if fault.startswith("mariadb"):
        return await asyncio.to_thread(first_award_after, tier, since)
    return recovery(load, killed_at)


Ready = Callable[[HaTier], Awaitable[None]]
Fault = Callable[[HaTier, Drill, str], Awaitable[Injected]]
STORY_FAULTS: dict[str, tuple[Ready, Fault]] = {  # what to wait for, then the fault
    **{fault: (postgres_settled, postgres_fault) for fault in FAULTS},
    "redis": (sentinels_settled, redis_fault),
    **{fault: (nothing_to_wait_for, mariadb_fault) for fault in MARIADB_FAULTS},
}


def first_write_back(load: Load, killed_at: float) -> str:
    """The requests `recovery` reads, relative to the kill: the first that failed, the first
    write acknowledged after it."""
    failed = [(s, u) for s, _, _, outcome, u in load.events if s > killed_at and outcome != "ok"]
    if not failed:
        return "no request failed"
    since, url = min(failed)
    ok = [(a, s, u) for s, a, m, o, u in load.events if s > since and m == "POST" and o == "ok"]
    shown = f"first failure sent +{since - killed_at:.2f} s ({url.split('/api/', 1)[-1]})"
    if ok:
        a, s, u = min(ok)
        shown += f", first write back sent +{s - killed_at:.2f} s, acknowledged"
        shown += f" +{a - killed_at:.2f} s ({u.split('/api/', 1)[-1]})"
    return shown


def recovery(load: Load, killed_at: float) -> float | None:
    """Seconds from the kill to the first write acknowledged after the first request that
    failed after it (or after the kill, when none failed); None while none is. (Events are
    kept in the order they were answered, not sent.)"""
    failed = [s for s, _, _, outcome, _ in load.events if s > killed_at and outcome != "ok"]
    since = min(failed, default=killed_at)
    ok = [a for s, a, m, o, _ in load.events if s > since and m == "POST" and o == "ok"]
    return min(ok) - killed_at if ok else None


def run(faults: list[str], stories_each: int, *, watched: bool = False) -> list[StoryFault]:
    """The drill in a directory the postgres and mysql users (the members') can enter;
    `watched`: the data tier's exporters, Prometheus and Alertmanager too. A run that
    failed keeps it (the members' Patroni and PostgreSQL logs, the services' logs) and
    says where."""
    tmp = Path(tempfile.mkdtemp(prefix="fixup-failover-stories-"))
    tmp.chmod(0o755)
    (tmp / "var").mkdir(mode=0o755)
    passed = False
    try:
        results = asyncio.run(drill(tmp, faults, stories_each, watched=watched))
        passed = all(result.passed for result in results)
        return results
    finally:
        if passed:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"failover drill: kept {tmp} (logs of the tier and the services)", flush=True)


async def drill(
    tmp: Path, faults: list[str], stories_each: int, *, watched: bool = False
) -> list[StoryFault]:
    var = tmp / "var"
    try:  # Redis too, whatever the faults: revocations reach every service through it
        tier = tier_up(var, ("postgres", "mariadb", "redis"))
        running = await start_drill(tmp, tier.dsn, tier.shared())
        try:
            if not watched:
                return await under_load(running, tier, faults, stories_each)
            watching = Watched.of_tier(tier.layout, tier.redis, tier.mariadb)
            with DataTierWatch(tmp / "watch", watching) as watch:
                await asyncio.to_thread(watch.wait_scraped)
                return await under_load(running, tier, faults, stories_each, watch)
        finally:
            running.stop()
    finally:
        ha_tier.down(var)


def classify(load: Load, killed_at: float) -> tuple[dict[str, int], dict[str, int]]:
    """-> (allowed, failed), by outcome and service: a 503 + Retry-After counts as allowed
    only when it was answered after the kill (a request in flight at the kill is answered
    by the outage)."""
    allowed: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for _, answered, _, outcome, url in load.events:
        if outcome == "ok":
            continue
        kind = f"{outcome} ({url.split('/api/', 1)[-1].split('/', 1)[0]})"
        if outcome.endswith(ALLOWED) and answered >= killed_at:
            allowed[kind] += 1
        else:
            failed[kind] += 1
    return dict(allowed), dict(failed)


async def primary_changed(watch: DataTierWatch, killed_at: float) -> str:
    """The "primary changed" alert at Alertmanager's webhook after a PostgreSQL fault, the
    first time (it then keeps firing for the rule's 10 minutes); waited for while the load
    runs on. A postmaster Patroni restarts in place changes no role, and fires nothing."""
    if watch.webhook.find(PRIMARY_CHANGED) is not None:
        return f"{PRIMARY_CHANGED}: firing at the webhook since an earlier fault"
    bound = RECOVERY_LIMIT + watch.delivery
    try:
        await asyncio.to_thread(watch.wait_for_alert, PRIMARY_CHANGED, bound)
    except StartError:
        return f"{PRIMARY_CHANGED}: not at the webhook within {bound:.0f} s"
    return f"{PRIMARY_CHANGED} at the webhook {time.monotonic() - killed_at:.1f} s after it"


async def under_load(
    running: Drill,
    tier: HaTier,
    faults: list[str],
    stories_each: int,
    watch: DataTierWatch | None = None,
) -> list[StoryFault]:
    results = []
    timeout = aiohttp.ClientTimeout(total=2 * PROCESS_MARGIN)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for fault in faults:
            # providers of their own: points = 10 x the jobs completed under this fault
            providers = [actor(Role.PROVIDER) for _ in range(CLIENTS)]
            service_id = await catalog_service(http, running.api("catalog"), *providers)
            ready, inject = STORY_FAULTS[fault]
            # the load starts on a settled tier: the previous fault's member back in sync
            await postgres_settled(tier)
            await ready(tier)
            revoked = await revoked_token(running, http)
            load = Load(running, http, service_id, providers)
            stop = asyncio.Event()
            clients = [asyncio.create_task(load.client(stop, p)) for p in providers]
            try:
                await stories(load, stories_each)
                load.phase = "during"
                primary_before = primary_member(tier.layout)
                killed_at, injected_wall = time.monotonic(), datetime.now(UTC)
                injected = await inject(tier, running, fault)
                what = injected.what
                healing = asyncio.create_task(asyncio.to_thread(healed, injected))
                noticed = None
                if watch is not None and fault in FAILS_OVER:  # the load runs on meanwhile
                    noticed = asyncio.create_task(primary_changed(watch, killed_at))

                async def recovered(
                    load: Load = load,
                    killed_at: float = killed_at,
                    fault: str = fault,
                    since: datetime = injected_wall,
                ) -> bool:
                    return await written_back(tier, fault, load, killed_at, since) is not None

                await wait_until(recovered, f"a write after {what}", FAULT_LIMIT)
                healed_at = await asyncio.wait_for(healing, FAULT_LIMIT)
                await postgres_settled(tier)  # the load after a fault runs on a whole tier
                # asked once settled: a member just woken still calls itself primary
                primary_after = primary_member(tier.layout)
                timeline = (
                    f"injected at {injected_wall:%H:%M:%S.%f} UTC, healed"
                    f" {healed_at - killed_at:.1f} s later; primary pg{primary_before}"
                    f" before, pg{primary_after} after; {first_write_back(load, killed_at)}"
                )
                load.phase = "after"
                await stories(load, stories_each)
            finally:
                stop.set()
                await asyncio.gather(*clients, return_exceptions=True)
            alert = await noticed if noticed is not None else ""
            held = await invariants(running, load, tier.dsn)
            if fault.startswith("mariadb"):
                held |= await asyncio.to_thread(award_keys_once, tier)
            if fault in ("freeze", "partition"):  # its standby was promoted; back, it follows
                moved = primary_after not in (None, primary_before)
                held[f"the old primary pg{primary_before} follows pg{primary_after}"] = moved
            if fault == "standbys":  # strict synchronous mode: nothing on one machine
                alone = one_machine_writes(load, killed_at, healed_at)
                shown = f"{len(alone)}, e.g. {alone[:3]}" if alone else "none"
                held[f"no write acknowledged with no standby: {shown}"] = not alone
            held["chat gap-free"] = not await pg.fetch(tier.dsn("chat"), GAPS)
            answers = await still_refused(running, http, revoked)
            held[f"revocations still honoured {answers}"] = set(answers.values()) == {401}
            allowed, failed = classify(load, killed_at)
            results.append(
                StoryFault(
                    fault=what,
                    recovery_seconds=(
                        await written_back(tier, fault, load, killed_at, injected_wall) or 0.0
                    ),
                    allowed=allowed,
                    failed=failed,
                    latency={
                        phase: f"{ms(values, 0.5)}/{ms(values, 0.99)}"
                        for phase, values in load.latency.items()
                    },
                    held=held,
                    alert=alert,
                    timeline=timeline,
                )
            )
            print("\n".join(results[-1].lines()), flush=True)
    return results


def healed(injected: Injected) -> float:
    """Heal the fault; -> the moment it was over (a member resumed or started again)."""
    injected.heal()
    return time.monotonic()


def one_machine_writes(load: Load, lost_at: float, back_at: float) -> list[str]:
    """The writes (every story POST writes to PostgreSQL) sent after the standbys were
    lost and acknowledged before one was started again: each on the primary alone."""
    return [
        url.split("/api/", 1)[-1]
        for sent, answered, method, outcome, url in load.events
        if method == "POST" and outcome == "ok" and sent > lost_at and answered < back_at
    ]


def main(argv: list[str] | None = None) -> int:
    """`make failover-drill`: every fault in turn under the story load."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.failover_stories", description=__doc__
    )
    parser.add_argument("--faults", default=",".join(STORY_FAULTS))
    parser.add_argument("--stories", type=int, default=20, help="before each fault, and after")
    parser.add_argument(
        "--rounds", type=int, default=1, help="the PostgreSQL faults this many times in a row"
    )
    args = parser.parse_args(argv)
    faults = args.faults.split(",")
    unknown = [f for f in faults if f not in STORY_FAULTS]
    if unknown:
        print(f"failover drill: unknown fault {unknown[0]!r}; known: {', '.join(STORY_FAULTS)}")
        return 2
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    # the PostgreSQL faults round after round on one tier; the Redis and MariaDB faults once,
    # last (each leaves its old primary down: a second round would find no replica)
    repeated = [f for f in faults if f in FAULTS] * max(1, args.rounds)
    results = run(repeated + [f for f in faults if f not in FAULTS], args.stories, watched=True)
    for result in results:
        print(f"{result.fault}: {'PASS' if result.passed else 'FAIL'}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
