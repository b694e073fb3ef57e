"""lib.db.pool's lending on both engines: one connection per request scope (nested use
lends it again, a second task is refused), the acquire timeout (PoolExhausted, armed only
when an acquire waits), waiters released or cancelled, a cut server (DatabaseUnavailable)
and a statement's own error. The service-level tests past capacity are
test_pool_capacity.py's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pymysql
import pytest

from lib.db import pool as pool_module
from lib.db.pool import Database, DatabaseUnavailable, PoolExhausted, connect
from lib.db.scope import SecondConnectionError, enter_scope, exit_scope
from tests.integration.waiting import until
from tests.proxy import TcpProxy, through
from tests.servers import DatabaseFactory

# postgresql+stack: reset off, as every service runs it: leases from the idle stack in front
# of asyncpg's pool (lib/db/pg_lending.py; its own cases are test_db_pool_stack.py's)
ENGINES = ["postgresql", "postgresql+stack", "mysql"]


@pytest.fixture(params=ENGINES)
async def db(request: pytest.FixtureRequest, databases: DatabaseFactory) -> AsyncIterator[Database]:
    engine, _, stack = request.param.partition("+")
    dsn = databases.create("scope", engine)
    database = await connect(dsn, min_size=1, max_size=2, acquire_timeout=0.5, reset=not stack)
    async with database.acquire() as conn:
        await execute(conn, "CREATE TABLE marks (id INT PRIMARY KEY)")
    yield database
    await database.close()


async def execute(conn: Any, sql: str) -> None:
    if isinstance(conn, asyncpg.Connection):
        await conn.execute(sql)
    else:
        async with conn.cursor() as cur:
            await cur.execute(sql)


async def marks(db: Database) -> list[int]:
    async with db.acquire() as conn:
        if isinstance(conn, asyncpg.Connection):
            return [r[0] for r in await conn.fetch("SELECT id FROM marks ORDER BY id")]
        async with conn.cursor() as cur:
            await cur.execute("SELECT id FROM marks ORDER BY id")
            return [r[0] for r in await cur.fetchall()]


async def test_inside_a_scope_nested_use_lends_the_same_connection(db: Database) -> None:
    token = enter_scope()
    try:
        async with db.transaction() as outer, db.acquire() as inner:
            assert inner is outer
            assert db.stats().in_use == 1
    finally:
        exit_scope(token)


async def test_inside_a_scope_a_second_task_cannot_take_another_connection(db: Database) -> None:
    token = enter_scope()
    try:
        async with db.acquire():

            async def sibling() -> None:
                async with db.acquire():
                    pass

            with pytest.raises(SecondConnectionError):
                await asyncio.create_task(sibling())
        async with db.acquire():  # released: the request may take one again
            pass
    finally:
        exit_scope(token)


async def test_outside_a_scope_tasks_take_their_own_connections(db: Database) -> None:
    gate = asyncio.Event()

    async def hold() -> None:
        async with db.acquire():
            if db.stats().in_use == 2:
                gate.set()
            await gate.wait()

    async with asyncio.timeout(5):
        await asyncio.gather(hold(), hold())


async def insert_then_fail(db: Database, mark: int) -> None:
    async with db.transaction() as conn:
        await execute(conn, f"INSERT INTO marks VALUES ({mark})")
        raise ZeroDivisionError


async def test_a_nested_transaction_is_a_savepoint(db: Database) -> None:
    token = enter_scope()
    try:
        async with db.transaction() as conn:
            await execute(conn, "INSERT INTO marks VALUES (1)")
            with pytest.raises(ZeroDivisionError):
                await insert_then_fail(db, 2)  # rolled back to the savepoint only
            async with db.transaction() as inner:
                await execute(inner, "INSERT INTO marks VALUES (3)")
        assert await marks(db) == [1, 3]
        with pytest.raises(ZeroDivisionError):
            await insert_then_fail(db, 4)
        assert await marks(db) == [1, 3]
    finally:
        exit_scope(token)


async def test_savepoints_nest_three_deep(db: Database) -> None:
    """A failing block two levels down rolls back to its own savepoint, taking the level
    below it (released already) with it; the levels above keep their writes."""

    async def level_one() -> None:
        async with db.transaction() as conn:
            await execute(conn, "INSERT INTO marks VALUES (2)")
            async with db.transaction() as inner:
                await execute(inner, "INSERT INTO marks VALUES (3)")
            raise ZeroDivisionError

    token = enter_scope()
    try:
        async with db.transaction() as conn:
            await execute(conn, "INSERT INTO marks VALUES (1)")
            with pytest.raises(ZeroDivisionError):
                await level_one()
            await execute(conn, "INSERT INTO marks VALUES (4)")
        assert await marks(db) == [1, 4]
    finally:
        exit_scope(token)
    assert getattr(db, "_depth", {}) == {}  # MySQL's savepoint depths: nothing left


async def test_a_failing_outer_transaction_takes_its_released_savepoints(db: Database) -> None:
    async def outer() -> None:
        async with db.transaction() as conn:
            await execute(conn, "INSERT INTO marks VALUES (1)")
            for mark in (2, 3):
                async with db.transaction() as inner:
                    await execute(inner, f"INSERT INTO marks VALUES ({mark})")
            raise ZeroDivisionError

    token = enter_scope()
    try:
        with pytest.raises(ZeroDivisionError):
            await outer()
        assert await marks(db) == []
    finally:
        exit_scope(token)
    assert getattr(db, "_depth", {}) == {}


async def test_a_full_pool_raises_pool_exhausted_after_the_timeout(db: Database) -> None:
    async with db.acquire(), db.acquire():  # no scope: both connections
        started = time.monotonic()
        with pytest.raises(PoolExhausted) as caught:
            async with db.acquire():
                pass
        elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 0.5 + 3.0
    assert str(caught.value) == "every database connection stayed busy for 0.5 s"
    assert caught.value.status == 503
    assert caught.value.headers["Retry-After"] == "1"
    async with db.acquire():  # and it recovers as soon as one is free
        pass


class CountingTimeouts:
    """asyncio.timeout as lib.db.pool calls it, counting the timers it arms."""

    def __init__(self) -> None:
        self.armed = 0
        self.real = asyncio.timeout

    def __call__(self, delay: float | None) -> asyncio.Timeout:
        self.armed += 1
        return self.real(delay)


async def test_only_an_acquire_that_waits_arms_the_timeout(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    timeouts = CountingTimeouts()
    monkeypatch.setattr(pool_module.asyncio, "timeout", timeouts)
    async with db.acquire() as conn:  # the pool's idle connection: lent at once
        await execute(conn, "SELECT 1")
    assert timeouts.armed == 0
    async with db.acquire(), db.acquire() as second:  # the second is opened: it waits
        await execute(second, "SELECT 1")
        assert timeouts.armed == 1
        with pytest.raises(PoolExhausted):  # a full pool: waits, under the timeout
            async with db.acquire():
                pass
        assert timeouts.armed == 2
    async with db.acquire(), db.acquire():  # both idle now: neither waits
        assert timeouts.armed == 2


async def test_a_waiting_acquire_gets_the_connection_released_meanwhile(db: Database) -> None:
    async def third() -> list[int]:
        async with db.acquire() as conn:
            await execute(conn, "INSERT INTO marks VALUES (3)")
        return await marks(db)

    async with db.acquire() as first, db.acquire():
        waiter = asyncio.create_task(third())
        await until(lambda: waiting_on_the_pool(db), "the waiter queued on the full pool")
        await execute(first, "INSERT INTO marks VALUES (1)")
    assert await asyncio.wait_for(waiter, 5) == [1, 3]


@pytest.mark.parametrize("waits_for", ["a connection released", "a connection opened"])
async def test_a_cancelled_waiter_leaves_the_pool_whole(db: Database, waits_for: str) -> None:
    """Cancelled while it waits (the caller gave up, or the acquire timeout), the driver's
    acquire is told so and puts back what it took: the pool still lends both connections."""
    async with db.acquire():
        if waits_for == "a connection released":
            async with db.acquire():
                waiter = asyncio.create_task(marks(db))
                await until(lambda: waiting_on_the_pool(db), "the waiter queued")
                waiter.cancel()
        else:  # the second connection is being opened for the waiter
            waiter = asyncio.create_task(marks(db))
            await until(lambda: opening_a_connection(db), "a connection being opened")
            waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert db.stats().in_use == 0
    async with db.acquire() as first, db.acquire() as second:
        await execute(first, "SELECT 1")
        await execute(second, "SELECT 1")


def waiting_on_the_pool(db: Database) -> bool:
    """Is a task queued for a connection of `db`'s full pool (asyncpg's queue getters,
    aiomysql's condition waiters)? Drivers' internals: no public API tells."""
    pool: Any = getattr(db, "pool")  # noqa: B009  (both engines' Database have one)
    if db.engine == "postgresql":
        return bool(pool._queue._getters)
    return bool(pool._cond._waiters)


def opening_a_connection(db: Database) -> bool:
    """Has a waiter taken a pool slot whose connection is being opened?"""
    pool: Any = getattr(db, "pool")  # noqa: B009
    if db.engine == "postgresql":
        return bool(pool._queue.empty())  # both holders out: one held, one connecting
    return bool(pool._acquiring)


async def test_a_cut_server_raises_database_unavailable(
    request: pytest.FixtureRequest, databases: DatabaseFactory
) -> None:
    for engine, port in (("postgresql", 5432), ("mysql", 3306)):
        proxy = await TcpProxy("127.0.0.1", port).start()
        dsn = through(databases.create("cut", engine), proxy)
        database = await connect(dsn, min_size=1, max_size=1, acquire_timeout=2.0)
        try:
            await proxy.stop()
            with pytest.raises(DatabaseUnavailable) as cut:  # the open connection was cut
                async with database.acquire() as conn:
                    await execute(conn, "SELECT 1")
            assert str(cut.value) == "the database connection was lost"
            with pytest.raises(DatabaseUnavailable) as refused:  # and a new one is refused
                async with database.acquire() as conn:
                    await execute(conn, "SELECT 1")
            assert str(refused.value) == "the database does not answer"
        finally:
            await database.close(grace=1.0)


async def test_a_statement_error_surfaces_as_itself(db: Database) -> None:
    """A query's own error (here a duplicate key) is the caller's to handle: not wrapped,
    not confused with a lost connection, and the connection goes back usable."""
    pg = db.engine == "postgresql"
    duplicate = asyncpg.UniqueViolationError if pg else pymysql.IntegrityError
    async with db.acquire() as conn:
        await execute(conn, "INSERT INTO marks VALUES (7)")
    for lend in (db.acquire, db.transaction):
        with pytest.raises(duplicate):
            async with lend() as conn:
                await execute(conn, "INSERT INTO marks VALUES (7)")
    assert await marks(db) == [7]
