"""The users service's own verifier reads the database's clock (ADR 0010).

Users signs `iat` with PostgreSQL's clock; the other services compare it with theirs and
forgive TOKEN_CLOCK_LEEWAY of skew. Users' own verifier must hold even when this host's
clock is far off (a users process 90 s behind would find every token it signs "issued in
the future"), so it checks times against the database's clock: this host's clock plus the
offset measured at start-up and again every OFFSET_REFRESH seconds (one query; the round
trip's half is the error, well inside the leeway)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from aiohttp import web

from lib.auth.tokens import TokenVerifier
from lib.http.keys import AUTH, DB, SETTINGS
from lib.logging import get_logger
from services.users.db import auth as q

log = get_logger("services.users.clock")
OFFSET_REFRESH = 60.0  # s between two measurements of the database clock's offset
OFFSET_RETRY = 1.0  # s between attempts while no measurement succeeded (database away)


class DatabaseClock:
    """`clock()`: Unix seconds on the database's clock, from this host's and an offset."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    async def measure(self, app: web.Application) -> float:
        async with app[DB].acquire() as conn:
            sent = time.time()
            now = await q.database_clock(conn)
            received = time.time()
        assert now is not None  # SELECT clock_timestamp(): always a row
        self.offset = now.timestamp() - (sent + received) / 2
        return self.offset


async def measure(clock: DatabaseClock, app: web.Application, *, first: bool) -> bool:
    """Measure the offset (logged the `first` time); the database away (at start-up too:
    lib/db/waiting.py) keeps the last one (0 until one succeeds: this host's clock)."""
    try:
        offset = await clock.measure(app)
    except Exception as exc:
        log.warning("database_clock_unavailable", error=repr(exc))
        return False
    if first:
        log.info("database_clock_offset", offset_s=round(offset, 3))
    return True


async def clock_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the verifier on the database's clock, its offset kept fresh."""
    public_key = app[SETTINGS].public_key_pem()
    clock = DatabaseClock()
    measured = await measure(clock, app, first=True)
    if public_key:
        leeway = app[SETTINGS].token_clock_leeway
        app[AUTH] = TokenVerifier(public_key, leeway, now=clock)

    async def refresh() -> None:
        nonlocal measured
        while True:
            await asyncio.sleep(OFFSET_REFRESH if measured else OFFSET_RETRY)
            measured = await measure(clock, app, first=not measured) or measured

    task = asyncio.create_task(refresh())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
