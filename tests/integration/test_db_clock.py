"""lib/db/clock.py against real PostgreSQL and MariaDB: the database's clock read as this
host's plus a measured offset, whatever this host's clock says (ADR 0028). A host clock
90 s behind or ahead is corrected to the server's within a loaded machine's margin; an
unmeasured clock is the host's own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from lib.db.clock import DatabaseClock
from lib.db.connecting import connect
from lib.db.pool import Database
from tests.servers import DatabaseFactory

ENGINES = ("postgresql", "mysql")
MARGIN = 1.0  # s: the round trip's half, on a loaded machine


@pytest.fixture(params=ENGINES)
async def db(request: pytest.FixtureRequest, databases: DatabaseFactory) -> AsyncIterator[Database]:
    database = await connect(databases.create("clock", request.param), min_size=1, max_size=2)
    yield database
    await database.close()


@pytest.mark.parametrize("skew", [-90.0, 90.0])
async def test_a_host_clock_off_by_90_s_reads_the_databases_time(db: Database, skew: float) -> None:
    clock = DatabaseClock(lambda: time.time() + skew)
    assert not clock.measured
    assert abs(clock() - (time.time() + skew)) < MARGIN  # unmeasured: the host's own clock
    offset = await clock.measure(db)
    assert clock.measured
    # database_now() less the real clock's mid-measure: one host here, the same clock
    assert abs(offset + skew) < MARGIN
    assert abs(clock() - time.time()) < MARGIN
