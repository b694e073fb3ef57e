"""lib/db/waiting.py: a database that is down at start-up delays and ends nothing.

Either engine: the first attempt refused gives a WaitingDatabase whose leases and ping are
DatabaseUnavailable (503) while it connects in the background; once the server answers
(a proxy starts listening on the port it was given) the same object lends real
connections. A bounded wait gives up, logged, and calls on_give_up instead of raising."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import pytest

from lib.db.pool import DatabaseUnavailable, PoolStats
from lib.db.waiting import WaitingDatabase, open_database
from tests.logging_support import capture_logs
from tests.proxy import TcpProxy, through
from tests.servers import DatabaseFactory
from tools.local.ports import free_port

ENGINES = ["postgresql", "mysql"]
MAX_DELAY = 0.2  # connect()'s pause between attempts here: the test waits a few of them


@pytest.mark.parametrize("engine", ENGINES)
async def test_waits_for_the_server_then_lends_its_connections(
    databases: DatabaseFactory, engine: str
) -> None:
    dsn = databases.create("waiting", engine)
    parts = urlsplit(dsn)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 0)
    port = free_port()
    proxy.port = port  # nothing listens there yet: every attempt is refused
    with capture_logs() as logs:
        db = await open_database(
            through(dsn, proxy),
            wait=None,
            attempt_timeout=2.0,
            on_give_up=lambda: pytest.fail("gave up while waiting without limit"),
            min_size=1,
            max_size=2,
            max_delay=MAX_DELAY,
            service="waiting",
        )
        await asyncio.sleep(3 * MAX_DELAY)  # a few more attempts, each logged
        await proxy.start(port)
        # one attempt's timeout, one pause, and a margin for a loaded machine
        await asyncio.wait_for(db.opened_event.wait(), 2.0 + MAX_DELAY + 5.0)
    retries = [e for e in logs if e["event"] == "db_connect_retry"]
    assert [e["attempt"] for e in retries] == list(range(1, len(retries) + 1))
    assert len(retries) >= 2
    assert all(e["error"] and e["log_level"] == "warning" for e in retries), retries
    assert all(0 <= e["delay_s"] <= MAX_DELAY for e in retries[1:]), retries
    connected = [e for e in logs if e["event"] == "db_connected"]
    assert [e["attempts"] for e in connected] == [len(retries) + 1]
    try:
        assert isinstance(db, WaitingDatabase)
        await db.ping()
        async with db.transaction() as conn:
            if engine == "postgresql":
                assert await conn.fetchval("SELECT 41 + 1") == 42
            else:
                async with conn.cursor() as cur:
                    await cur.execute("SELECT 41 + 1")
                    assert (await cur.fetchone())[0] == 42
        assert db.stats().size >= 1
    finally:
        await db.close(grace=1.0)
        await proxy.stop()


async def test_while_it_waits_every_lease_and_ping_is_503() -> None:
    db = await open_database(
        f"mysql://root@127.0.0.1:{free_port()}/nothing",
        wait=None,
        attempt_timeout=1.0,
        on_give_up=lambda: pytest.fail("gave up"),
        max_delay=MAX_DELAY,
    )
    try:
        assert isinstance(db, WaitingDatabase)
        assert db.engine == "mysql"
        for attempt in (db.ping(), db.acquire().__aenter__()):
            with pytest.raises(DatabaseUnavailable, match="does not answer yet"):
                await attempt
        assert db.stats() == PoolStats(0, 0)
        assert not db.opened_event.is_set()
    finally:
        await db.close()


async def test_a_server_that_answers_at_once_gives_the_pool_itself(
    databases: DatabaseFactory,
) -> None:
    db = await open_database(
        databases.create("waiting", "postgresql"),
        wait=None,
        attempt_timeout=5.0,
        on_give_up=lambda: pytest.fail("gave up"),
        min_size=1,
        max_size=1,
    )
    try:
        assert not isinstance(db, WaitingDatabase)
        await db.ping()
    finally:
        await db.close()


async def test_a_bounded_wait_gives_up_and_says_so() -> None:
    wait = 1.0
    gave_up = asyncio.Event()
    began = time.monotonic()
    with capture_logs() as logs:
        db = await open_database(
            f"postgresql://postgres@127.0.0.1:{free_port()}/nothing",
            wait=wait,
            attempt_timeout=1.0,
            on_give_up=gave_up.set,
            max_delay=MAX_DELAY,
        )
        try:
            await asyncio.wait_for(gave_up.wait(), wait + 1.0 + 5.0)
            waited = time.monotonic() - began
            with pytest.raises(DatabaseUnavailable):
                await db.ping()
        finally:
            await db.close()
    assert waited >= wait - MAX_DELAY  # it tried for the whole wait, not less
    [end] = [e for e in logs if e["event"] == "db_connect_gave_up"]
    assert end["log_level"] == "error"
    assert end["waited_s"] >= wait - MAX_DELAY - 0.1
    assert end["error"]


async def test_a_url_of_no_engine_fails_start_up_at_once() -> None:
    with pytest.raises(ValueError, match="unsupported database URL scheme"):
        await open_database(
            "sqlite:///x.db", wait=None, attempt_timeout=1.0, on_give_up=lambda: None
        )
