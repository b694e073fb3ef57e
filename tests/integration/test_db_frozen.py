"""lib.db.pool when PostgreSQL stops answering without closing anything (a frozen or
cut-off primary: tests/proxy.py holds every answer of the real server) or answers as a
server that no longer takes writes: 503 (DatabaseUnavailable) within the command timeout,
the connection dropped, and the next lease served by a new one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from lib.db.connecting import connect
from lib.db.pool import Database, DatabaseUnavailable
from lib.errors import ServiceUnavailable
from tests.proxy import TcpProxy, through
from tests.servers import DatabaseFactory

COMMAND_TIMEOUT = 0.5
# what a lease may take past the command timeout: the release's own bounded wait for the
# cancelled command (the same timeout) and a loaded machine's scheduling
MARGIN = COMMAND_TIMEOUT + 2.0


@pytest.fixture
async def proxy(databases: DatabaseFactory) -> AsyncIterator[tuple[TcpProxy, str]]:
    dsn = databases.create("frozen", "postgresql")
    host_port = dsn.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    tcp = await TcpProxy(host, int(port)).start()
    yield tcp, through(dsn, tcp)
    tcp.release()
    await tcp.stop()


@pytest.fixture
async def db(proxy: tuple[TcpProxy, str]) -> AsyncIterator[Database]:
    database = await connect(proxy[1], min_size=1, max_size=2, command_timeout=COMMAND_TIMEOUT)
    yield database
    await database.close(grace=COMMAND_TIMEOUT)


async def test_a_frozen_server_answers_503_within_the_command_timeout(
    proxy: tuple[TcpProxy, str], db: Database
) -> None:
    tcp, _ = proxy
    async with db.acquire() as conn:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
    tcp.hold()
    began = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="did not answer in time") as caught:
        async with db.acquire() as conn:
            await conn.fetchval("SELECT 1")
    took = time.monotonic() - began
    assert isinstance(caught.value, ServiceUnavailable)  # the 503 with Retry-After
    assert str(caught.value) == "the database did not answer in time"
    assert COMMAND_TIMEOUT <= took < COMMAND_TIMEOUT + MARGIN, took
    tcp.release()  # the server is back: the next lease gets a connection of its own
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT pg_backend_pid()") != pid


async def test_a_lease_cancelled_while_the_server_is_frozen_ends_within_the_timeout(
    proxy: tuple[TcpProxy, str], db: Database
) -> None:
    """A request cancelled mid-query (its client gone) while the server holds every answer:
    the connection's release waits for the query's cancellation at most the command
    timeout, not for a server that may never answer."""
    tcp, _ = proxy
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
    asked = asyncio.Event()

    async def query() -> None:
        async with db.acquire() as conn:
            asked.set()
            await conn.fetchval("SELECT 2")

    tcp.hold()
    task = asyncio.create_task(query())
    await asked.wait()  # the task is past its lease and waiting on the query it sent
    task.cancel()
    began = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, COMMAND_TIMEOUT + MARGIN)
    assert time.monotonic() - began < COMMAND_TIMEOUT + MARGIN


async def test_a_lease_that_ended_well_whose_release_is_never_answered_is_a_503_in_time(
    proxy: tuple[TcpProxy, str], db: Database
) -> None:
    """The block had its answers; the server froze before the release's reset of the
    connection: the release waits at most the command timeout, then the lease ends in the
    503 (a release that ends in time either way: docs/mutation.md, lib.db.pool)."""
    tcp, _ = proxy

    async def lease() -> None:
        async with db.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
            tcp.hold()

    with pytest.raises(DatabaseUnavailable) as caught:
        await asyncio.wait_for(lease(), COMMAND_TIMEOUT + MARGIN)
    assert str(caught.value) == "the database did not answer in time"
    assert isinstance(caught.value.__cause__, TimeoutError)


async def test_a_slow_command_is_cut_and_its_connection_not_lent_again(db: Database) -> None:
    async with db.acquire() as conn:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
    with pytest.raises(DatabaseUnavailable):
        async with db.acquire() as conn:
            await conn.execute(f"SELECT pg_sleep({COMMAND_TIMEOUT * 4})")
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT pg_backend_pid()") != pid


async def test_a_server_that_no_longer_takes_writes_is_away_not_an_error(db: Database) -> None:
    """A write on a primary demoted under a pooled connection fails as read-only: 503, and
    the connection is dropped so the next one finds the member that takes writes."""
    async with db.acquire() as conn:
        await conn.execute("CREATE TABLE t (id int)")
        pid = await conn.fetchval("SELECT pg_backend_pid()")

    async def write_on_a_standby() -> None:
        async with db.transaction() as conn:
            await conn.execute("SET TRANSACTION READ ONLY")  # what a standby answers
            await conn.execute("INSERT INTO t VALUES (1)")

    with pytest.raises(DatabaseUnavailable) as caught:
        await write_on_a_standby()
    assert isinstance(caught.value.__cause__, asyncpg.ReadOnlySQLTransactionError)
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT pg_backend_pid()") != pid
        assert await conn.fetchval("SELECT count(*) FROM t") == 0


async def test_no_writable_host_is_away_not_an_error(databases: DatabaseFactory) -> None:
    """Every host of the list up, none the kind asked for (a multi-host DSN while no member
    is primary): the connection attempt is "database away", a 503, never a 500."""
    dsn = databases.create("standby", "postgresql")
    with pytest.raises(asyncpg.TargetServerAttributeNotMatched):
        await connect(f"{dsn}?target_session_attrs=standby", attempts=1, min_size=1)
    db = await connect(f"{dsn}?target_session_attrs=standby", attempts=1, min_size=0)
    try:
        with pytest.raises(DatabaseUnavailable):
            async with db.acquire() as conn:
                await conn.fetchval("SELECT 1")
    finally:
        await asyncio.wait_for(db.close(), COMMAND_TIMEOUT + MARGIN)
