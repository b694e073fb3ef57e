"""Migrations while the release serves: a lock the runner cannot get fails the migration
within lock_timeout, changes nothing and a re-run succeeds; MariaDB refuses to copy; under
load the online-safe migration costs no request and little latency, the unsafe one stalls."""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psycopg
import pytest

from lib.auth.principal import Role
from services.orders.app import create_app as orders_app
from tests.integration.orders_support import Caller, caller, orders_settings
from tests.integration.test_migrations import schema_dump
from tests.servers import DatabaseFactory
from tools.local.dbadmin import mysql_connect, psycopg_dsn
from tools.migrations import migrate
from tools.time_scale import scaled

LOCK = migrate.Timeouts(lock=0.5, statement=30)
MARGIN = scaled(5.0)  # connecting, yoyo's own bookkeeping, a loaded machine


def source(tmp_path: Path, db: str, files: dict[str, str]) -> Path:
    """The db's real migrations plus `files` (name -> SQL) in a folder of the test."""
    folder = tmp_path / f"migrations_{db}_{uuid.uuid4().hex[:6]}"
    shutil.copytree(migrate.migrations_dir(db), folder)
    for name, sql in files.items():
        (folder / name).write_text(sql)
    return folder


@pytest.fixture
def orders_db(databases: DatabaseFactory) -> Iterator[str]:
    dsn = databases.create("online", "postgresql")
    migrate.up("orders", dsn)
    yield dsn
    databases.drop(dsn)


PG_BLOCKED = {
    # a transactional migration: the table it creates first is rolled back with it
    "transactional": (
        "0005_note.sql",
        "CREATE TABLE order_notes (id uuid NOT NULL,"
        " CONSTRAINT order_notes_pkey PRIMARY KEY (id));\n"
        "ALTER TABLE orders ADD COLUMN note text NOT NULL DEFAULT '';\n",
        "ACCESS SHARE",  # a reader's open transaction: ALTER TABLE needs ACCESS EXCLUSIVE
    ),
    # CREATE INDEX CONCURRENTLY outside a transaction: it never got its lock, built nothing
    "concurrently": (
        "0005_note_index.sql",
        "-- transactional: false\nDROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);\n",
        "SHARE UPDATE EXCLUSIVE",  # e.g. a VACUUM or another index build in progress
    ),
}


@pytest.mark.parametrize("kind", sorted(PG_BLOCKED))
def test_postgresql_migration_that_cannot_get_its_lock_fails_cleanly_and_reruns(
    orders_db: str, tmp_path: Path, kind: str
) -> None:
    name, sql, mode = PG_BLOCKED[kind]
    folder = source(tmp_path, "orders", {name: sql})
    before = schema_dump(orders_db)
    with psycopg.connect(psycopg_dsn(orders_db)) as holder:
        holder.execute(f"LOCK TABLE orders IN {mode} MODE")  # held until the block ends
        started = time.monotonic()
        with pytest.raises(migrate.MigrationFailedError) as failed:
            migrate.up("orders", orders_db, source=folder, timeouts=LOCK)
        elapsed = time.monotonic() - started
        holder.rollback()
    message = str(failed.value)
    assert name.removesuffix(".sql") in message, message
    assert "lock_timeout (0.5 s)" in message, message
    assert "run `make migrate-up` again" in message
    assert LOCK.lock <= elapsed < LOCK.lock + MARGIN, elapsed
    assert schema_dump(orders_db) == before, "the failed migration left something behind"
    assert migrate.up("orders", orders_db, source=folder, timeouts=LOCK) == [name[:-4]]
    assert schema_dump(orders_db) != before


def test_mariadb_migration_that_cannot_get_its_lock_fails_cleanly_and_reruns(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    dsn = databases.create("online_my", "mysql")
    migrate.up("points", dsn)
    name = "0004_note.sql"
    folder = source(
        tmp_path,
        "points",
        {
            name: "ALTER TABLE user_points ADD COLUMN note VARCHAR(100) NULL,"
            " ALGORITHM=INSTANT, LOCK=NONE;\n"
        },
    )
    before = schema_dump(dsn)
    holder = mysql_connect(dsn, database=dsn.rsplit("/", 1)[1])
    try:
        with holder.cursor() as cur:  # an open transaction that read the table: its MDL
            cur.execute("START TRANSACTION")
            cur.execute("SELECT count(*) FROM user_points")
        started = time.monotonic()
        with pytest.raises(migrate.MigrationFailedError, match="lock_timeout") as failed:
            migrate.up("points", dsn, source=folder, timeouts=LOCK)
        elapsed = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert "0004_note" in str(failed.value)
    assert elapsed < math.ceil(LOCK.lock) + MARGIN, elapsed  # MariaDB waits whole seconds
    assert schema_dump(dsn) == before
    assert migrate.up("points", dsn, source=folder, timeouts=LOCK) == ["0004_note"]
    assert "`note` varchar(100)" in schema_dump(dsn)


def test_mariadb_refuses_an_alter_that_would_copy_the_table(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    """ALGORITHM=INPLACE on a change that needs a copy: the server refuses (the migration
    fails, named) instead of copying the table under a lock; nothing changes."""
    dsn = databases.create("online_copy", "mysql")
    migrate.up("points", dsn)
    name = "0004_reason_charset.sql"
    folder = source(
        tmp_path,
        "points",
        {
            name: "ALTER TABLE points_ledger MODIFY reason VARCHAR(200) CHARACTER SET ascii"
            " NOT NULL, ALGORITHM=INPLACE, LOCK=NONE;\n"
        },
    )
    before = schema_dump(dsn)
    with pytest.raises(migrate.MigrationFailedError, match="0004_reason_charset") as failed:
        migrate.up("points", dsn, source=folder)
    assert "ALGORITHM=COPY" in str(failed.value) or "not supported" in str(failed.value)
    assert schema_dump(dsn) == before


# --- under load ---------------------------------------------------------------------------

ROWS = 200_000  # enough that a plain trigram index build stalls requests ~1 s on a quiet machine
WORKERS = 8
BEFORE = 2.0  # seconds of load measured before the migration starts
# the longest a request waits on a lock, as a share of the migration's run: the unsafe one
# holds requests for at least STALL of it; the safe one (a catalog-only ALTER's moment)
# for under BRIEF. A lock wait, not a latency: a machine loaded by other work slows every
# request alike, and only the lock tells the migration's cost from the machine's.
STALL = 0.5
BRIEF = 0.25
SAMPLE_EVERY = 0.01  # s between two looks at pg_stat_activity (a measurement's grain)

SAFE = {
    "0005_online_expand.sql": (
        "-- expand: a column with a constant default (catalog only), a CHECK NOT VALID\n"
        "ALTER TABLE orders ADD COLUMN note text NOT NULL DEFAULT '';\n"
        "ALTER TABLE orders ADD CONSTRAINT orders_note_chk CHECK (char_length(note) <= 500)"
        " NOT VALID;\n"
    ),
    "0006_online_validate_and_index.sql": (
        "-- transactional: false\n"
        "ALTER TABLE orders VALIDATE CONSTRAINT orders_note_chk;\n"
        "DROP INDEX CONCURRENTLY IF EXISTS orders_description_trgm_idx;\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_description_trgm_idx"
        " ON orders USING gin (description gin_trgm_ops);\n"
    ),
}
UNSAFE = {
    "0007_unsafe_expand.sql": (
        "ALTER TABLE orders ADD COLUMN note2 text NOT NULL DEFAULT '';\n"
        "ALTER TABLE orders ADD CONSTRAINT orders_note2_chk CHECK (char_length(note2) <= 500);\n"
        "CREATE INDEX orders_address_trgm_idx ON orders USING gin (address gin_trgm_ops);\n"
    ),
}


@dataclass(frozen=True)
class Sample:
    start: float
    end: float
    status: int  # 0: no answer

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class Figures:
    requests: int
    failed: int
    p99: float
    statuses: dict[int, int]

    @classmethod
    def of(cls, samples: list[Sample]) -> Figures:
        latencies = sorted(s.end - s.start for s in samples)
        assert latencies, "no request in this window"
        p99 = latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)]
        statuses = dict(Counter(s.status for s in samples))
        return cls(len(samples), sum(not s.ok for s in samples), p99, statuses)


async def worker(
    session: aiohttp.ClientSession, base: str, who: Caller, order_id: str, stop: asyncio.Event,
    samples: list[Sample],
) -> None:  # fmt: skip
    """Reads and writes one order in turn: GET it, PATCH it (If-Match the version read)."""
    version, n = 0, 0
    while not stop.is_set():
        n += 1
        started = time.monotonic()
        try:
            if n % 2:
                async with session.get(f"{base}/v1/orders/{order_id}", headers=who.headers) as r:
                    status = r.status
                    if status == 200:
                        version = int(r.headers["ETag"].strip('"'))
                    await r.read()
            else:
                headers = who.headers | {"If-Match": f'"{version}"'}
                body = {"description": f"The kitchen tap drips, visit {n}"}
                url = f"{base}/v1/orders/{order_id}"
                async with session.patch(url, json=body, headers=headers) as r:
                    status = r.status
                    if status == 200:
                        version = int(r.headers["ETag"].strip('"'))
                    await r.read()
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        samples.append(Sample(started, time.monotonic(), status))


async def measure(
    base: str, callers: list[tuple[Caller, str]], dsn: str, folder: Path
) -> dict[str, Any]:
    """Load for BEFORE seconds, then the migrations of `folder` while the load goes on."""
    samples: list[Sample] = []
    stop = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        tasks = [
            asyncio.create_task(worker(session, base, who, oid, stop, samples))
            for who, oid in callers
        ]
        await asyncio.sleep(BEFORE)  # the measuring window, not a synchronisation
        migrated = asyncio.Event()
        sampler = asyncio.create_task(longest_lock_wait(dsn, migrated))
        t0 = time.monotonic()
        try:
            applied = await asyncio.to_thread(migrate.up, "orders", dsn, source=folder)
        finally:
            migrated.set()
        t1 = time.monotonic()
        lock_wait = await sampler
        stop.set()
        await asyncio.gather(*tasks)
    warm = samples[0].start + 0.5 if samples else 0.0  # first requests: cold caches
    before = [s for s in samples if warm <= s.start and s.end <= t0]
    during = [s for s in samples if s.start < t1 and s.end > t0]
    return {
        "applied": applied,
        "seconds": t1 - t0,
        "before": Figures.of(before),
        "during": Figures.of(during),
        "max_during": max(s.end - s.start for s in during),
        "lock_wait": lock_wait,
    }


async def longest_lock_wait(dsn: str, done: asyncio.Event) -> float:
    """Until `done`: the longest any request's statement has waited on a lock (seconds,
    by the database's clock); the migration's own statements (DDL) are not requests."""
    conn = await asyncpg.connect(dsn)
    longest = 0.0
    try:
        while not done.is_set():
            waited = await conn.fetchval(
                "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - query_start)), 0)"
                " FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
                " AND query !~* '^\\s*(alter|create|drop)\\M'"
            )
            longest = max(longest, float(waited))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), SAMPLE_EVERY)
    finally:
        await conn.close()
    return longest


def fill(dsn: str, callers: list[Caller]) -> list[str]:
    """ROWS orders of strangers, then one order per caller; the callers' order ids."""
    with psycopg.connect(psycopg_dsn(dsn), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO orders (customer_id, service_id, description, address, time_start,"
            " time_end) SELECT gen_random_uuid(), gen_random_uuid(), 'Fix the tap, job ' || g,"
            " g || ' Test Road, Springfield', now(), now() + interval '2 hours'"
            " FROM generate_series(1, %s) AS g",
            (ROWS,),
        )
        ids = []
        for who in callers:
            row = conn.execute(
                "INSERT INTO orders (customer_id, service_id, description, address, time_start,"
                " time_end) VALUES (%s, gen_random_uuid(), 'The kitchen tap drips',"
                " '1 Test Road', now(), now() + interval '2 hours') RETURNING id",
                (who.id,),
            ).fetchone()
            assert row is not None
            ids.append(str(row[0]))
        conn.execute("ANALYZE orders")
    return ids


async def test_online_safe_migration_under_load_costs_no_request_and_the_unsafe_one_stalls(
    databases: DatabaseFactory, aiohttp_server: Any, tmp_path: Path
) -> None:
    dsn = databases.create("online_load", "postgresql")
    # the rows go in before 0003's trigram index exists (inserting through it is slow)
    await asyncio.to_thread(migrate.up, "orders", dsn, 2)
    callers = [caller(Role.CUSTOMER) for _ in range(WORKERS)]
    order_ids = await asyncio.to_thread(fill, dsn, callers)
    await asyncio.to_thread(migrate.up, "orders", dsn)
    server = await aiohttp_server(
        orders_app(
            orders_settings(
                dsn,
                db_pool_min=WORKERS,
                db_pool_max=WORKERS + 2,
                # the load measures the migration, not the limits: a quiet machine serves
                # more than the tests' usual 1000 requests a second from one address
                rate_limit_ip_rate=1e9,
                rate_limit_ip_burst=10**9,
                rate_limit_user_rate=1e9,
                rate_limit_user_burst=10**9,
            )
        )
    )
    base = f"http://127.0.0.1:{server.port}"
    pairs = list(zip(callers, order_ids, strict=True))

    safe = await measure(base, pairs, dsn, source(tmp_path, "orders", SAFE))
    assert safe["applied"] == ["0005_online_expand", "0006_online_validate_and_index"]
    unsafe = await measure(base, pairs, dsn, source(tmp_path, "orders", UNSAFE))
    assert unsafe["applied"] == ["0007_unsafe_expand"]
    print(  # the figures docs/migrations.md quotes
        f"\nonline-safe: {safe['during'].requests} requests during {safe['seconds']:.2f} s, "
        f"{safe['during'].failed} failed; p99 before {safe['before'].p99 * 1000:.0f} ms, "
        f"during {safe['during'].p99 * 1000:.0f} ms, longest lock wait"
        f" {safe['lock_wait'] * 1000:.0f} ms\n"
        f"unsafe:      {unsafe['during'].requests} requests during {unsafe['seconds']:.2f} s, "
        f"{unsafe['during'].failed} failed; p99 before {unsafe['before'].p99 * 1000:.0f} ms, "
        f"during {unsafe['during'].p99 * 1000:.0f} ms, slowest {unsafe['max_during'] * 1000:.0f} ms"
        f", longest lock wait {unsafe['lock_wait'] * 1000:.0f} ms"
        f"; statuses {unsafe['during'].statuses}"
    )

    assert safe["before"].failed == 0
    assert safe["during"].failed == 0
    assert safe["during"].requests >= WORKERS, "the migration ended before the load saw it"
    assert safe["lock_wait"] < BRIEF * safe["seconds"], safe

    # not hollow: the same harness sees the unsafe migration's table lock as a stall, a
    # request that waited on it for most of the migration
    assert unsafe["before"].failed == 0
    assert unsafe["seconds"] >= 0.5, "the table is too small to show a stall"
    assert unsafe["lock_wait"] >= STALL * unsafe["seconds"], unsafe
    assert unsafe["max_during"] >= STALL * unsafe["seconds"], unsafe
