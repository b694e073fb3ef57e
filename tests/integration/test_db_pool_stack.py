"""lib/db/pg_lending.py's idle stack against the real PostgreSQL: a clean lease's connection
is lent again without asyncpg's acquire/release, its old handle and statements are dead,
and every other case goes through asyncpg's release as before: a connection left in a
transaction (rolled back), a cancelled query (waited for), listeners, max_queries, an
expired generation, a waiter. A backend killed while stacked or lent is replaced; idle
connections above the floor are swept; close drains the stack, waits for a lease within
the grace, and terminates after it. (The lending rules shared with asyncpg's path run on
the stack too: test_db_pool_lending.py's `postgresql+stack`.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from lib.db.pool import DatabaseUnavailable, PgDatabase, PoolStats, _no_reset, connect
from lib.db.scope import enter_scope, exit_scope
from tests.integration.waiting import until
from tests.servers import DatabaseFactory


@pytest.fixture
async def dsn(databases: DatabaseFactory) -> str:
    dsn = databases.create("stack", "postgresql")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE marks (id INT PRIMARY KEY)")
    finally:
        await conn.close()
    return dsn


@pytest.fixture
async def db(dsn: str) -> AsyncIterator[PgDatabase]:
    database = await connect(dsn, min_size=1, max_size=2, acquire_timeout=2.0, reset=False)
    assert isinstance(database, PgDatabase)
    yield database
    await database.close(grace=2.0)


@pytest.fixture
async def admin(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    yield conn
    await conn.close()


def stacked(db: PgDatabase) -> list[Any]:
    assert db.idle is not None
    return db.idle.idle


async def pid_of_a_lease(db: PgDatabase) -> int:
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
        return int(conn.get_server_pid())


async def test_a_clean_lease_is_stacked_and_lent_again_without_asyncpg(db: PgDatabase) -> None:
    token = enter_scope()
    try:
        async with db.acquire() as first:
            pid = first.get_server_pid()
            stmt = await first.prepare("SELECT 41 + 1")
            assert db.stats() == PoolStats(size=1, idle=0)
        assert len(stacked(db)) == 1
        assert db.pool.get_idle_size() == 0  # still checked out of asyncpg's pool
        assert db.stats() == PoolStats(size=1, idle=1)
        with pytest.raises(asyncpg.InterfaceError, match="released back to the pool"):
            await first.fetchval("SELECT 1")  # the lease's handle died with the lease
        with pytest.raises(asyncpg.InterfaceError, match="released back to the pool"):
            await stmt.fetchval()  # and the statements made through it
        async with db.acquire() as again:
            assert again is not first
            assert again.get_server_pid() == pid
            assert await again.fetchval("SELECT 41 + 1") == 42
            assert stacked(db) == []
    finally:
        exit_scope(token)
    assert db.idle is not None
    assert db.idle.sweeper is not None
    loop = asyncio.get_running_loop()
    assert 299 < db.idle.sweeper.when() - loop.time() <= 300


@pytest.mark.parametrize("state", ["open", "failed"])
async def test_a_connection_left_in_a_transaction_is_rolled_back_by_asyncpg(
    db: PgDatabase, state: str
) -> None:
    async with db.acquire() as conn:
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO marks VALUES (1)")
        if state == "failed":
            with pytest.raises(asyncpg.DivisionByZeroError):
                await conn.execute("SELECT 1 / 0")
        assert conn.is_in_transaction()
    assert stacked(db) == []  # asyncpg's release took it, rolled back
    assert db.pool.get_idle_size() == 1
    async with db.acquire() as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT count(*) FROM marks") == 0
    assert len(stacked(db)) == 1


async def test_a_managed_transaction_committed_is_stacked(db: PgDatabase) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO marks VALUES (2)")
    assert len(stacked(db)) == 1
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM marks") == 1


async def test_a_request_cancelled_mid_query_is_not_lent_again_until_the_server_stopped_it(
    db: PgDatabase, admin: asyncpg.Connection
) -> None:
    async def slow() -> None:
        async with db.acquire() as conn:
            await conn.execute("SELECT pg_sleep(30)")

    task = asyncio.create_task(slow())
    deadline = time.monotonic() + 5
    while not await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'"
        " AND state = 'active'"
    ):
        assert time.monotonic() < deadline, "the query never started"
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stacked(db) == []  # asyncpg's release waited for the cancellation
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
        assert not conn.is_in_transaction()
    assert time.monotonic() - started < 10
    sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'"
    assert await admin.fetchval(sleeping + " AND state = 'active'") == 0
    assert len(stacked(db)) == 1


async def test_a_backend_killed_while_stacked_is_replaced(
    db: PgDatabase, admin: asyncpg.Connection
) -> None:
    pid = await pid_of_a_lease(db)
    (proxy,) = stacked(db)
    assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    await until(lambda: proxy._con is None, "asyncpg reclaimed the dead connection")
    assert db.stats().idle == db.pool.get_idle_size()  # the dead one is not counted
    again = await pid_of_a_lease(db)  # dropped from the stack; asyncpg reconnects
    assert again != pid
    assert len(stacked(db)) == 1


async def test_a_connection_aborted_without_its_cleanup_is_never_lent_or_stacked(
    db: PgDatabase,
) -> None:
    """A protocol abort may close a connection before asyncpg's cleanup ran (asyncpg's
    release guards against it too): closed but still attached, stacked or lent."""
    pid = await pid_of_a_lease(db)
    (proxy,) = stacked(db)
    proxy._con._abort()  # closed, not yet cleaned up: nothing yields until the next lease
    assert proxy._con is not None
    assert db.stats().idle == 0
    async with db.acquire() as conn:  # terminated at the pop, a new one from asyncpg
        assert conn.get_server_pid() != pid
        fresh = conn.get_server_pid()
        conn._con._abort()
    assert stacked(db) == []  # closed at the release: asyncpg's release terminated it
    assert await pid_of_a_lease(db) not in (pid, fresh)


@pytest.mark.parametrize("noticed", [False, True], ids=["query first", "asyncpg first"])
async def test_a_backend_killed_while_lent_is_unavailable_then_replaced(
    db: PgDatabase, admin: asyncpg.Connection, noticed: bool
) -> None:
    """Whether the next query finds the socket closed, or asyncpg saw the drop first and
    detached the handle (the query then raises InterfaceError): DatabaseUnavailable."""
    pid = await pid_of_a_lease(db)

    async def killed_under_the_lease() -> None:
        async with db.acquire() as conn:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            if noticed:
                await until(lambda: conn._con is None, "asyncpg detached the handle")
            await conn.fetchval("SELECT 1")

    with pytest.raises(DatabaseUnavailable, match="the database connection was lost"):
        await killed_under_the_lease()
    assert stacked(db) == []
    assert await pid_of_a_lease(db) != pid


async def test_every_backend_killed_the_pool_reconnects(
    db: PgDatabase, admin: asyncpg.Connection
) -> None:
    """As after a server restart: every connection of the pool gone at once."""
    async with db.acquire() as one, db.acquire() as two:
        pids = {one.get_server_pid(), two.get_server_pid()}
    assert len(stacked(db)) == 2
    for pid in pids:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    await until(lambda: all(p._con is None for p in stacked(db)), "both reclaimed")
    async with db.acquire() as one, db.acquire() as two:
        assert {one.get_server_pid(), two.get_server_pid()}.isdisjoint(pids)
        assert await one.fetchval("SELECT 1") == await two.fetchval("SELECT 1") == 1


async def test_an_expired_generation_is_closed_stacked_or_lent(db: PgDatabase) -> None:
    pid = await pid_of_a_lease(db)
    await db.pool.expire_connections()
    renewed = await pid_of_a_lease(db)  # the stacked one was terminated, not lent
    assert renewed != pid
    async with db.acquire() as conn:
        assert conn.get_server_pid() == renewed
        await db.pool.expire_connections()
    assert stacked(db) == []  # asyncpg's release closed it
    assert await pid_of_a_lease(db) not in (pid, renewed)


@pytest.mark.parametrize("kind", ["notification", "log"])
async def test_a_connection_with_a_listener_goes_through_asyncpg(db: PgDatabase, kind: str) -> None:
    def heard(*args: Any) -> None:
        pass

    async def listening() -> None:
        async with db.acquire() as conn:
            if kind == "log":
                conn.add_log_listener(heard)
            else:
                await conn.add_listener("marks", heard)

    with pytest.warns(asyncpg.InterfaceWarning, match=f"active {kind} listener"):
        await listening()
    assert stacked(db) == []  # asyncpg warned and removed it
    async with db.acquire() as conn:
        assert not conn._con._listeners
        assert not conn._con._log_listeners
    assert len(stacked(db)) == 1


async def test_a_connection_at_max_queries_is_closed_by_asyncpg(dsn: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, max_queries=3, reset=_no_reset)
    db = PgDatabase(pool, stack=True)
    assert db.idle is not None
    db.idle.max_queries = 3
    try:
        pids = [await pid_of_a_lease(db) for _ in range(4)]  # one query a lease
        assert pids[0] == pids[1] == pids[2] != pids[3]
    finally:
        await db.close(grace=2.0)


async def test_a_release_while_someone_waits_is_handed_to_the_waiter(db: PgDatabase) -> None:
    async with db.acquire():
        async with db.acquire() as second:  # the pool of two, both lent
            pid = second.get_server_pid()
            waiter = asyncio.create_task(pid_of_a_lease(db))
            await until(lambda: bool(db.pool._queue._getters), "the waiter queued in asyncpg")
        assert stacked(db) == []  # handed over through asyncpg's queue, not stacked
        assert not db.pool._queue._getters
        assert second._con is None  # the lease's handle detached
    assert await asyncio.wait_for(waiter, 5) == pid
    assert len(stacked(db)) == 2  # nobody waits any more: both stacked
    assert db.stats() == PoolStats(size=2, idle=2)


async def test_a_handed_over_connection_whose_waiter_gave_up_idles_in_asyncpg(
    db: PgDatabase,
) -> None:
    """Its inactivity timer re-armed, as asyncpg's release does: it can still expire."""
    async with db.acquire():
        async with db.acquire() as second:
            holder = second._holder
            waiter = asyncio.create_task(pid_of_a_lease(db))
            await until(lambda: bool(db.pool._queue._getters), "the waiter queued in asyncpg")
        waiter.cancel()  # woken by the hand-over, cancelled before it ran
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert holder._in_use is None  # idle in asyncpg's queue
        assert holder._inactive_callback is not None
        assert stacked(db) == []
    assert db.stats() == PoolStats(size=2, idle=2)


async def test_the_sweep_closes_connections_not_lent_for_a_lifetime_above_the_floor(
    dsn: str, admin: asyncpg.Connection
) -> None:
    db = await connect(dsn, min_size=2, max_size=3, reset=False)
    assert isinstance(db, PgDatabase)
    assert db.idle is not None
    try:
        async with db.acquire(), db.acquire(), db.acquire():
            pass
        assert len(stacked(db)) == 3
        assert db.pool.get_size() == 3
        assert db.idle.sweeper is not None
        db.idle.sweeper.cancel()  # the timer's call, made here instead of in 300 s
        db.idle.sweep()  # the first: nothing was stacked a whole period yet
        assert db.pool.get_size() == 3
        assert db.idle.low == 3
        assert db.idle.sweeper is not None  # armed again: the stack is not empty
        top = await pid_of_a_lease(db)  # the top one was lent in this period
        assert db.idle.low == 2
        db.idle.sweeper.cancel()
        db.idle.sweep()  # bottom two idle a period: one closed, one kept at the floor (2)
        assert db.pool.get_size() == 2
        assert len(stacked(db)) == 2
        assert db.idle.low == 2
        assert stacked(db)[-1]._con.get_server_pid() == top
        for proxy in stacked(db):
            pid = proxy._con.get_server_pid()
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        await until(lambda: all(p._con is None for p in stacked(db)), "both reclaimed")
        db.idle.sweeper.cancel()
        db.idle.sweep()  # the dead ones dropped; nothing stacked: no timer
        assert stacked(db) == []
        assert db.idle.sweeper is None
        assert db.idle.low == 0
        assert await pid_of_a_lease(db) != top
    finally:
        await db.close(grace=2.0)


async def test_the_sweep_runs_every_lifetime_while_something_is_stacked(
    db: PgDatabase,
) -> None:
    assert db.idle is not None
    db.idle.lifetime = 0.01  # the timer itself this time, 10 ms instead of 300 s
    await pid_of_a_lease(db)  # the first push arms it
    first = db.idle.sweeper
    assert first is not None
    await until(lambda: db.idle is not None and db.idle.sweeper is not first, "a sweep ran")
    second = db.idle.sweeper
    assert second is not None  # re-armed: the stack holds the floor's connection
    await until(lambda: db.idle is not None and db.idle.sweeper is not second, "and again")
    assert len(stacked(db)) == 1  # at the floor (min_size 1): kept
    assert db.pool.get_size() == 1


async def test_close_drains_the_stack_and_waits_for_a_lease_within_the_grace(
    db: PgDatabase,
) -> None:
    async with db.acquire(), db.acquire():
        pass
    assert len(stacked(db)) == 2
    lease = db.acquire()
    conn = await lease.__aenter__()
    (idle,) = stacked(db)
    closing = asyncio.create_task(db.close(grace=5.0))
    await until(lambda: idle._con is None, "the stacked connection given back to asyncpg")
    assert db.idle is not None
    assert db.idle.closing
    assert db.idle.sweeper is None
    assert stacked(db) == []
    assert not closing.done()  # waiting for the lease
    await lease.__aexit__(None, None, None)  # given back through asyncpg, not stacked
    await asyncio.wait_for(closing, 5)
    assert stacked(db) == []
    assert conn._con is None
    assert db.pool.is_closing()
    assert db.pool.get_size() == 0


async def test_close_terminates_a_lease_held_past_the_grace(db: PgDatabase) -> None:
    lease = db.acquire()
    conn = await lease.__aenter__()
    started = time.monotonic()
    await db.close(grace=0.2)
    assert time.monotonic() - started < 2.0
    assert conn._con is None  # terminated: the handle detached
    assert db.pool.is_closing()
