"""Redis's copy of the revocations kept whole (ADR 0010): users owns the marker.

Every REVOCATION_RESTORE_CHECK seconds (and at start-up) one task per users process:
- marker absent (Redis restarted empty, flushed, evicted the hash, or never filled):
  restore every revocation younger than the longest token life (lib.auth.revocation_restore),
  then set the marker; until then every process asks the record;
- marker present: check that Redis holds the newest record (a failover to a replica that
  had not received it keeps the marker but lost that write): if not, remove the marker and
  restore;
- every PRUNE_EVERY seconds, drop the fields older than the longest token life;
- every round, the hash's expiry pushed back to the longest token life (nothing left
  behind once users is gone, when every token it signed has expired too).
A failure (Redis or the database away) is logged and tried again next time: meanwhile the
verifiers ask the record, so nothing waits on this task but Redis's speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import AsyncIterator

from aiohttp import web

from lib.auth.revocation import CLOCK_MARGIN, ceil_ms
from lib.auth.revocation_restore import RevocationRestorer
from lib.http.app import CleanupCtx
from lib.http.keys import DB, REVOCATIONS
from lib.logging import get_logger
from services.users.db import auth as q
from services.users.settings import UsersSettings

log = get_logger("services.users.revocations")
PRUNE_EVERY = 60.0  # s between two prunes of the hash
RESTORE_ATTEMPTS = 5  # restores started over (a loss or another replica's) before a pause


async def restore(app: web.Application, restorer: RevocationRestorer) -> int:
    """Put back every live revocation and set the marker; how many records were read."""
    lifetime = app[REVOCATIONS].max_age + CLOCK_MARGIN
    for _ in range(RESTORE_ATTEMPTS):
        token = await restorer.begin()
        async with app[DB].transaction() as conn:
            await q.hold_revocation_lock(conn)  # waits for revocations not yet committed
            rows = await q.recent_revocations(conn, seconds=lifetime)
        records = [(row.user_id, ceil_ms(row.not_before)) for row in rows]
        if await restorer.finish(token, records):
            log.warning("revocations_restored", records=len(records))
            return len(records)
    raise RuntimeError(f"the revocations were lost again during {RESTORE_ATTEMPTS} restores")


async def newest_held(app: web.Application, restorer: RevocationRestorer) -> bool:
    """Whether Redis holds the newest record (or it is older than any live token)."""
    async with app[DB].acquire() as conn:
        newest = await q.latest_revocation(conn)
    if newest is None:
        return True
    lifetime = app[REVOCATIONS].max_age + CLOCK_MARGIN
    if (newest.now - newest.not_before).total_seconds() > lifetime:
        return True
    return await restorer.holds(newest.user_id, ceil_ms(newest.not_before))


async def keep(app: web.Application, restorer: RevocationRestorer) -> None:
    """One round: the marker checked (and the newest record), a restore when needed."""
    await restorer.keep_alive(app[REVOCATIONS].max_age + CLOCK_MARGIN)
    if await restorer.marked():
        if await newest_held(app, restorer):
            return
        log.warning("revocations_newest_missing")  # lost writes, marker kept: distrust it
        await restorer.unmark()
    else:
        log.warning("revocations_marker_missing")
    await restore(app, restorer)


async def prune(app: web.Application, restorer: RevocationRestorer) -> int:
    lifetime = app[REVOCATIONS].max_age + CLOCK_MARGIN
    async with app[DB].acquire() as conn:
        now = await q.database_clock(conn)
    assert now is not None  # SELECT clock_timestamp(): always a row
    return await restorer.prune(ceil_ms(now) - lifetime * 1000)


def keeper_ctx(settings: UsersSettings) -> CleanupCtx:
    """cleanup_ctx factory: the keeper task while the app runs (with Redis only)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        revocations = app[REVOCATIONS]
        if revocations.client is None:
            yield
            return
        restorer = RevocationRestorer(revocations)

        async def loop() -> None:
            pruned_at = time.monotonic()
            while True:
                try:
                    await keep(app, restorer)
                    if time.monotonic() - pruned_at >= PRUNE_EVERY:
                        pruned_at = time.monotonic()
                        await prune(app, restorer)
                except Exception as exc:  # Redis or the database away: next round
                    log.warning("revocations_keeper_failed", error=repr(exc))
                await asyncio.sleep(settings.revocation_restore_check)

        task = asyncio.create_task(
            loop(), name="users-revocation-keeper", context=contextvars.Context()
        )
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
