"""lib.db.pool against the real servers: both engines behind one interface. The retries'
arithmetic (attempts, backoff, a wrong URL not retried) is tests/unit/test_db_pool_units.py's;
a full pool is tests/integration/test_db_pool_lending.py's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pymysql
import pytest

from lib.db import connecting
from lib.db.connecting import connect
from lib.db.pool import Database, MyDatabase, PgDatabase, PoolStats
from tests.servers import DatabaseFactory
from tools.local.ports import free_port

ENGINES = ["postgresql", "mysql"]


@pytest.fixture(params=ENGINES)
async def db(request: pytest.FixtureRequest, databases: DatabaseFactory) -> AsyncIterator[Database]:
    dsn = databases.create("pool", request.param)
    database = await connect(dsn, min_size=2, max_size=3)
    yield database
    await database.close()


async def execute(conn: Any, sql: str) -> None:
    if conn.__class__.__module__.startswith("asyncpg"):
        await conn.execute(sql)
    else:
        async with conn.cursor() as cur:
            await cur.execute(sql)


async def fetchval(conn: Any, sql: str) -> Any:
    if conn.__class__.__module__.startswith("asyncpg"):
        return await conn.fetchval(sql)
    async with conn.cursor() as cur:
        await cur.execute(sql)
        row = await cur.fetchone()
        return row[0]


async def count(db: Database, table: str = "items") -> int:
    async with db.acquire() as conn:
        return int(await fetchval(conn, f"SELECT COUNT(*) FROM {table}"))


async def make_table(db: Database) -> None:
    async with db.acquire() as conn:
        await execute(conn, "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL)")


async def test_connect_gives_the_engine_of_the_scheme(db: Database) -> None:
    assert isinstance(db, PgDatabase if db.engine == "postgresql" else MyDatabase)
    await db.ping()
    async with db.acquire() as conn:
        assert await fetchval(conn, "SELECT 1 + 1") == 2


async def test_transaction_commits_on_success(db: Database) -> None:
    await make_table(db)
    async with db.transaction() as conn:
        await execute(conn, "INSERT INTO items VALUES (1, 'a')")
        await execute(conn, "INSERT INTO items VALUES (2, 'b')")
        assert await count(db) == 0  # another connection does not see it yet
    assert await count(db) == 2


async def test_transaction_rolls_back_on_exception(db: Database) -> None:
    await make_table(db)

    async def failing() -> None:
        async with db.transaction() as conn:
            await execute(conn, "INSERT INTO items VALUES (1, 'a')")
            assert await fetchval(conn, "SELECT COUNT(*) FROM items") == 1  # own write seen
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        await failing()
    assert await count(db) == 0
    # the connection went back clean: the next transaction works and commits
    async with db.transaction() as conn:
        await execute(conn, "INSERT INTO items VALUES (1, 'a')")
    assert await count(db) == 1


async def test_transaction_rolls_back_on_cancel(db: Database) -> None:
    await make_table(db)
    started = asyncio.Event()

    async def slow_write() -> None:
        async with db.transaction() as conn:
            await execute(conn, "INSERT INTO items VALUES (7, 'x')")
            started.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(slow_write())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await count(db) == 0
    assert db.stats().in_use == 0


async def test_failed_statement_rolls_back_the_whole_transaction(db: Database) -> None:
    await make_table(db)

    async def twice() -> None:
        async with db.transaction() as conn:
            await execute(conn, "INSERT INTO items VALUES (1, 'a')")
            await execute(conn, "INSERT INTO items VALUES (1, 'again')")

    with pytest.raises(Exception, match=r"(?i)duplicate"):
        await twice()
    assert await count(db) == 0


async def test_stats_follow_acquire(db: Database) -> None:
    await db.ping()
    start = db.stats()
    assert isinstance(start, PoolStats)
    assert start.in_use == 0
    assert start.idle == start.size >= 1
    async with db.acquire() as one:
        held = db.stats()
        assert held.in_use == 1
        assert held.idle == held.size - 1
        async with db.acquire() as two:
            assert one is not two
            assert db.stats().in_use == 2
        assert db.stats().in_use == 1
    end = db.stats()
    assert end.in_use == 0
    assert end.idle == end.size


async def test_close_releases_every_connection(databases: DatabaseFactory) -> None:
    for engine in ENGINES:
        database = await connect(databases.create("close", engine), min_size=2, max_size=2)
        await database.ping()
        assert database.stats().size == 2
        await database.close()
        assert database.stats().size == 0, engine
        with pytest.raises(Exception):  # noqa: B017, PT011  (each driver has its own error)
            async with database.acquire():
                pass


async def test_mysql_sessions_are_utc(databases: DatabaseFactory) -> None:
    database = await connect(databases.create("tz", "mysql"), min_size=2, max_size=2)
    try:
        async with database.acquire() as one, database.acquire() as two:
            for conn in (one, two):
                assert await fetchval(conn, "SELECT @@session.time_zone") == "+00:00"
                assert await fetchval(conn, "SELECT NOW() = UTC_TIMESTAMP()") == 1
    finally:
        await database.close()


async def test_mariadb_scheme_is_mysql(databases: DatabaseFactory) -> None:
    dsn = databases.create("maria", "mysql").replace("mysql://", "mariadb://", 1)
    database = await connect(dsn, min_size=1, max_size=1)
    try:
        assert database.engine == "mysql"
        await database.ping()
    finally:
        await database.close()


# --- connect: retries, then the error ---


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every pool-opening attempt of connect()."""
    calls: list[str] = []
    real = connecting._open

    async def counting(dsn: str, *args: Any, **options: Any) -> Database:
        calls.append(dsn)
        return await real(dsn, *args, **options)

    monkeypatch.setattr(connecting, "_open", counting)
    return calls


@pytest.mark.parametrize(
    ("scheme", "error"),
    [("postgresql", OSError), ("mysql", pymysql.MySQLError)],
)
async def test_connect_to_closed_port_gives_up_after_attempts(
    opens: list[str], scheme: str, error: type[BaseException]
) -> None:
    port = free_port()  # nothing listens here
    dsn = f"{scheme}://root@127.0.0.1:{port}/nothing"
    started = time.perf_counter()
    with pytest.raises(error):
        await connect(dsn, min_size=1, max_size=1, attempts=2, base_delay=0.01)
    assert time.perf_counter() - started < 3
    assert opens == [dsn, dsn]
