"""The database's clock in a process whose own clock may be off (ADR 0010, ADR 0028).

Token times (`iat`, `exp`) are written with the users database's clock, and every
database of the system keeps server time (NTP on the database hosts, the one source of
time compared across processes). A verifier that judged them by its own host's clock
would refuse every fresh token when that clock is behind by more than the leeway, and
accept expired ones when it is ahead. So each service's verifier reads the time as its
own database tells it: this host's clock plus an offset, measured with one query at
start-up and again every OFFSET_REFRESH seconds (RETRY while no measurement succeeded
yet); the error is half the query's round trip, far inside TOKEN_CLOCK_LEEWAY. The
database away: the last offset is kept (the host's clock drifts milliseconds a minute).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lib.db.pool import Database

OFFSET_REFRESH = 60.0  # s between two measurements once one succeeded
RETRY = 1.0  # s between two attempts while none did
NOW = {  # Unix seconds (float) on the server's clock, per engine
    "postgresql": "SELECT extract(epoch FROM clock_timestamp())::float8",
    "mysql": "SELECT UNIX_TIMESTAMP(SYSDATE(6))",
}


async def database_now(db: Database) -> float:
    """The database server's clock, Unix seconds."""
    async with db.acquire() as conn:
        if db.engine == "postgresql":
            return float(await conn.fetchval(NOW["postgresql"]))
        async with conn.cursor() as cur:
            await cur.execute(NOW["mysql"])
            row = await cur.fetchone()
        return float(row[0])


class DatabaseClock:
    """`clock()`: Unix seconds on the database's clock, from this host's and an offset
    (0 until measured: the host's own clock)."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self.offset = 0.0
        self.measured = False
        self._wall = wall

    def __call__(self) -> float:
        return self._wall() + self.offset

    async def measure(self, db: Database) -> float:
        sent = self._wall()
        now = await database_now(db)
        received = self._wall()
        self.offset = now - (sent + received) / 2
        self.measured = True
        return self.offset
