"""The restore drill, bounded (ADR 0027; `make restore-drill` runs it longer with
RESTORE_DRILL_FULL=1): the release drill's story load through a real NGINX onto servers
whose history is kept (WAL archived by pgBackRest, MariaDB's binary log), a point T taken
mid-run on the database clock while the load goes on, then every database restored to T
into new servers and checked against what the clients saw:

- every create acknowledged before T is there, none sent after T is (a request in flight
  across T may be either: its commit time is unknown to the client);
- inside the restored set: one accepted offer per order, every conversation's messages
  numbered 1..last_seq without a gap;
- across databases, the outbox: awards committed to points before T are there, none
  after; relaying the restored outbox (a completed job whose award had not reached points
  at T is still in it) awards each job exactly once: points = 10 x completed jobs.

- the erasure (ADR 0060): a provider with rows in users, catalog, orders and chat is
  deleted through the gateway after T, under the load; the copies restored to T have the
  person back, and the services started on them erase the person again in every service.

It prints RPO (how far before T the newest lost acknowledged write was: 0 when none is
lost) and RTO (seconds from the restore command to a queryable copy) per database, and
the seconds the erasure took, live and again on the restored copies.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from lib.auth.principal import Role
from services.orders.settings import OrdersSettings
from tests import pg
from tests.reliability import erasure, figures
from tests.reliability.awards import (
    POINTS_PER_JOB,
    SETTLE,
    ledger,
    relay_env,
    settle,
    start_points,
)
from tests.reliability.drill import start_drill
from tests.reliability.stack import start
from tests.reliability.test_release_drill import CLIENTS, Load, stories
from tests.reliability.world import actor, catalog_service
from tools.backups import backup, backup_servers, restore
from tools.backups.backup_settings import BackupSettings, pg_databases
from tools.local.databases import get_database, with_database
from tools.local.db_servers import MariaInstance
from tools.local.service_process import PROCESS_MARGIN

FULL = os.environ.get("RESTORE_DRILL_FULL") == "1"
STORIES = 40 if FULL else 4  # whole stories before T, and after it
TABLES = {"orders": "orders", "offers": "orders", "reviews": "orders",
          "conversations": "chat", "messages": "chat", "users": "users"}  # fmt: skip
LEEWAY = timedelta(seconds=1)  # points_ledger.created_at is its statement's start
# the lease of the drill's relay (orders' defaults): a row leased at T is delivered after it
_ORDERS = OrdersSettings.model_fields
DRILL_LEASE = _ORDERS["points_timeout"].default * (_ORDERS["outbox_batch"].default + 1)


class TimedLoad(Load):
    """The release drill's load; each acknowledged create also with when its request was
    sent and answered (this process's monotonic clock)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.window = (0.0, 0.0)
        self.timed: list[tuple[str, str, float, float]] = []  # kind, id, sent, answered

    async def request(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        sent = time.monotonic()
        answer = await super().request(*args, **kwargs)
        self.window = (sent, time.monotonic())  # read by created(), with no await between
        return answer

    def created(self, kind: str, answer: dict[str, Any]) -> str:
        made = super().created(kind, answer)
        self.timed.append((kind, made, *self.window))
        return made


async def point_in_time(dsn: str) -> tuple[datetime, float, float]:
    """T: the next whole second of the database clock (MariaDB's binary log has whole
    seconds). -> (T, before, after): a write answered before `before` committed before
    T; one sent after `after` commits after it."""
    async with pg.connected(dsn) as conn:
        before = time.monotonic()
        now: datetime = await conn.fetchval("SELECT clock_timestamp()")
        target = now.replace(microsecond=0) + timedelta(seconds=1)
        deadline = before + PROCESS_MARGIN
        while not await conn.fetchval("SELECT clock_timestamp() >= $1", target):
            assert time.monotonic() < deadline, f"the database clock never reached {target}"
            await asyncio.sleep(0.05)  # a poll interval
        return target, before, time.monotonic()


@dataclass
class Seen:
    """One kind of acknowledged write, in the restored copy."""

    missing: int  # acknowledged before T, not restored
    early: int
    present: int  # sent after T, restored
    late: int
    rpo: float  # s before T of the newest missing one (0: none)

    def line(self) -> str:
        return (f"{self.missing} of {self.early} acknowledged before T missing, "
                f"{self.present} of {self.late} sent after T present")  # fmt: skip


async def writes_at_t(
    load: TimedLoad, restored: str, before: float, after: float
) -> dict[str, Seen]:
    found = {}
    for kind in sorted({kind for kind, *_ in load.timed}):
        early = {i: answered for k, i, _, answered in load.timed if k == kind and answered < before}
        late = [i for k, i, sent, _ in load.timed if k == kind and sent > after]
        dsn = with_database(restored, f"fixup_{TABLES[kind]}")
        query = f"SELECT id::text FROM {kind} WHERE id = ANY($1::uuid[])"
        present = {row[0] for row in await pg.fetch(dsn, query, [*early, *late])}
        lost = [at for i, at in early.items() if i not in present]
        rpo = before - max(lost) if lost else 0.0
        found[kind] = Seen(len(lost), len(early), len(present & set(late)), len(late), rpo)
    return found


GAPS = """SELECT c.id FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id
GROUP BY c.id, c.last_seq
HAVING count(m.id) <> c.last_seq OR coalesce(max(m.seq), 0) <> c.last_seq"""


async def restored_invariants(restored: str) -> dict[str, bool]:
    orders, chat = with_database(restored, "fixup_orders"), with_database(restored, "fixup_chat")
    doubled = await pg.fetch(orders, "SELECT order_id FROM offers WHERE status = 'ACCEPTED'"
                          " GROUP BY order_id HAVING count(*) > 1")  # fmt: skip
    gaps = await pg.fetch(chat, GAPS)
    return {"one accepted offer per order": not doubled, "chat gap-free": not gaps}


def awards_around(points_dsn: str, target: datetime) -> tuple[set[str], set[str]]:
    """The live ledger's keys committed surely before T, and surely after it."""
    database = points_dsn.rsplit("/", 1)[1]
    server = MariaInstance(Path(), int(points_dsn.split(":")[2].split("/")[0]))
    with server.connect(database) as conn, conn.cursor() as cur:
        naive = target.replace(tzinfo=None)
        cur.execute(
            "SELECT idempotency_key FROM points_ledger WHERE created_at < %s", (naive - LEEWAY,)
        )
        early = {row[0] for row in cur.fetchall()}
        cur.execute("SELECT idempotency_key FROM points_ledger WHERE created_at >= %s", (naive,))
        return early, {row[0] for row in cur.fetchall()}


async def relayed(tmp: Path, orders: str, points: str) -> dict[str, bool]:
    """Orders' relay on the restored outbox into the restored points: exactly once."""
    points_process, env = await start_points(points, tmp / "points-restored.log")
    relay = await start("orders", relay_env(orders, "http://127.0.0.1:9", env), tmp / "relay.log")
    try:
        # a row the drill's relay had leased at T waits out that lease first (the default
        # settings': one points call's deadline per row of a batch, and one more)
        await settle(orders, SETTLE + DRILL_LEASE)
    finally:
        relay.stop()
        points_process.stop()
    completed = await pg.fetch(
        orders, "SELECT id::text, provider_id::text FROM jobs WHERE status = 'COMPLETED'"
    )
    keys, balances = await asyncio.to_thread(ledger, points)
    per_provider: dict[str, int] = {}
    for _, provider in completed:
        per_provider[provider] = per_provider.get(provider, 0) + 1
    return {
        "every award exactly once": set(keys) == {f"job:{job}" for job, _ in completed}
        and set(keys.values()) <= {1},
        "points = 10 x completed jobs": all(
            balances.get(p) == POINTS_PER_JOB * n for p, n in per_provider.items()
        ),
    }


def new_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="fixup-drill-"))
    root.chmod(0o755)  # the postgres and mysql users reach their directories below it
    return root


async def test_restore_drill() -> None:
    root = await asyncio.to_thread(new_root)
    settings = BackupSettings(root, 2, 6, 60, 2, None)
    try:
        servers = await asyncio.to_thread(backup_servers.up, settings)
        await asyncio.to_thread(backup.backup, settings, "full")
        drill = await start_drill(root, servers.dsn, shared={"ERASURE_INTERVAL": "0.5"})
        stop = asyncio.Event()
        try:
            timeout = aiohttp.ClientTimeout(total=2 * PROCESS_MARGIN)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                providers = [actor(Role.PROVIDER) for _ in range(CLIENTS)]
                person = actor(Role.PROVIDER)  # erased after T: a story of theirs before it
                service_id = await catalog_service(http, drill.api("catalog"), *providers, person)
                await erasure.account(servers.dsn("users"), person)
                load = TimedLoad(drill, http, service_id, providers)
                clients = [asyncio.create_task(load.client(stop, p)) for p in providers]
                try:
                    await load.story(person)
                    await stories(load, STORIES)
                    target, before, after = await point_in_time(servers.pg.dsn())
                    await erasure.erase(http, drill.api("users"), person)
                    live = await erasure.until_erased(servers.dsn, person, PROCESS_MARGIN)
                    await stories(load, STORIES)
                finally:
                    stop.set()
                    await asyncio.gather(*clients, return_exceptions=True)
        finally:
            drill.stop()
        early, late = await asyncio.to_thread(awards_around, servers.dsn("points"), target)
        began = time.monotonic()
        restored = await asyncio.to_thread(
            restore.restore_pg, settings, get_database("orders"), target,
            settings.restores / "pg", alone=False,
        )  # fmt: skip
        pg_rto = time.monotonic() - began
        began = time.monotonic()
        points = await asyncio.to_thread(
            restore.restore_mysql,
            settings,
            get_database("points"),
            target,
            settings.restores / "points",
        )
        points_rto = time.monotonic() - began
        for db in pg_databases():
            copy = with_database(restored, f"fixup_{db.name}")
            await asyncio.to_thread(restore.check_migrations, db, copy)
        seen = await writes_at_t(load, restored, before, after)
        keys_then, _ = await asyncio.to_thread(ledger, points)
        restored_keys = set(keys_then)
        awards = Seen(
            len(early - restored_keys), len(early), len(late & restored_keys), len(late), 0.0
        )
        held = await restored_invariants(restored)
        held |= await relayed(root, with_database(restored, "fixup_orders"), points)
        back, again, started = await erasure.erased_again(
            root, root / "storage", lambda name: with_database(restored, f"fixup_{name}"), person
        )
    finally:
        for home in settings.restores.glob("*"):
            restore.discard(home)
        await asyncio.to_thread(backup_servers.down, settings)
        shutil.rmtree(root, ignore_errors=True)
    rpo = {db.name: 0.0 for db in pg_databases()}
    for kind, what in seen.items():
        rpo[TABLES[kind]] = max(rpo[TABLES[kind]], what.rpo)
    lines = [
        f"restore drill: {sum(load.outcomes.values())} requests, {load.stories} whole stories,"
        f" T = {target.isoformat()}, failed {sum(load.outcomes.values()) - load.outcomes['ok']}",
        *(f"{kind}: {what.line()}" for kind, what in seen.items()),
        f"points awards: {awards.line()}",
        *(f"{name}: {'PASS' if ok else 'FAIL'}" for name, ok in held.items()),
        *(
            f"{db}: RPO {s:.1f} s, RTO {pg_rto:.1f} s (one cluster restore)"
            for db, s in rpo.items()
        ),
        f"points: RPO 0.0 s, RTO {points_rto:.1f} s",
        f"erasure after T: erased in every service {live:.1f} s after the DELETE; restored"
        f" to T: erased in {sorted(n for n, done in back.items() if done) or 'none'};"
        f" erased again in every service {again:.1f} s after the first of its services"
        f" started ({started:.1f} s to start the four, one after another)",
    ]
    print("\n".join(lines))
    assert all(w.missing == 0 and w.present == 0 for w in [*seen.values(), awards]), lines
    assert all(w.early > 0 and w.late > 0 for w in seen.values()), lines
    assert all(held.values()), lines
    assert not any(back.values()), lines  # the restore rewound it: the consumers' work
    figures.add("databases restored to a point mid-load, nothing acknowledged lost", 6)
