"""Lending a PostgreSQL connection without asyncpg's Pool.acquire/release (ADR 0013).

asyncpg's pool costs ~112k instructions an acquire/release pair (callgrind): its queue, a
connection proxy, an `asyncio.shield` task on every release, the connection's inactivity
timer cancelled and re-armed. That is more than the statement a 304 runs. `IdleStack`
keeps the connections leases give back *checked out of* asyncpg's pool, on a LIFO stack:
the next lease pops one (a few checks), a clean one is pushed back. asyncpg still opens,
reconnects, waits, resets and closes every connection: whatever is not the plain case goes
through its acquire and release, which stay the slow path.

A lease's connection goes back without asyncpg's release only when all of this holds
(the reason for each check is what that release does), else that release runs:
- the database is not closing;
- the connection is open (asyncpg terminates a closed one), in no transaction (it rolls
  back), with no cancellation in flight (it waits for the server's answer), no listener
  (it warns and removes them), under `max_queries` (it closes the connection) and of the
  pool's current generation (`expire_connections`: it closes it).
Then, when a lease waits in asyncpg's acquire (a full pool), the connection is handed over
as the end of asyncpg's release does it (the holder's `_release`, which queues it and wakes
the waiter, and its inactivity timer re-armed): what is skipped is only the reset, which
has nothing to do with reset off, and the `asyncio.shield` task that protects it.
Otherwise it is pushed on the stack.
As asyncpg's release does, the handle the lease held is detached (a call through it raises
InterfaceError) and the statements and cursors made through it are invalidated; the stack
holds a fresh proxy for the next lease. The stack is used only with the pool's reset off
(every service: ADR 0005): with reset on, each release must run the reset query.

A stacked connection that dies is reclaimed by asyncpg (its cleanup puts the holder back in
asyncpg's queue and detaches our proxy): `pop` drops it and the lease takes asyncpg's path,
which reconnects. asyncpg's inactivity timer does not run for a stacked connection, so a
sweep every `max_inactive_connection_lifetime` terminates the ones no lease took since the
last sweep while the pool holds more than `min_size` (asyncpg's own rule): an idle
connection above the floor closes within one to two lifetimes. This reads asyncpg 0.32's
private attributes (pinned in pyproject.toml); tests/integration/test_db_pool_stack.py runs
every branch against the real server.
"""

from __future__ import annotations

import asyncio
from typing import Any

from asyncpg.pool import PoolConnectionProxy

MAX_QUERIES = 50_000  # asyncpg's defaults, passed to create_pool: the stack applies them too
INACTIVE_LIFETIME = 300.0
ASYNCPG_LIMITS: dict[str, Any] = {
    "max_queries": MAX_QUERIES,
    "max_inactive_connection_lifetime": INACTIVE_LIFETIME,
}


class IdleStack:
    """The idle connections of one asyncpg pool, checked out of it, last in first out."""

    __slots__ = ("closing", "idle", "lifetime", "low", "max_queries", "pool", "sweeper")

    def __init__(
        self, pool: Any, max_queries: int = MAX_QUERIES, lifetime: float = INACTIVE_LIFETIME
    ) -> None:
        self.pool, self.max_queries, self.lifetime = pool, max_queries, lifetime
        self.idle: list[Any] = []
        self.closing = False
        self.low = 0  # the bottom `low` entries: not lent since the last sweep
        self.sweeper: asyncio.TimerHandle | None = None

    def pop(self) -> Any | None:
        """An idle live connection of the pool's generation, or None (asyncpg's path)."""
        idle = self.idle
        while idle:
            proxy = idle.pop()
            if len(idle) < self.low:
                self.low = len(idle)
            con = proxy._con
            if con is None:  # it died while stacked: asyncpg reclaimed its holder
                continue
            if con.is_closed() or proxy._holder._generation != self.pool._generation:
                con.terminate()  # its cleanup gives the holder back to asyncpg, unconnected
                continue
            return proxy
        return None

    def push(self, proxy: Any) -> bool:
        """Stack the lease's connection if it is in the plain case; False: asyncpg's release."""
        con = proxy._con
        if (
            self.closing
            or con is None
            or con.is_closed()
            or con._top_xact is not None
            or con.is_in_transaction()
            or con._listeners
            or con._log_listeners
        ):
            return False
        protocol, holder = con._protocol, proxy._holder
        if (
            protocol._is_cancelling()
            or protocol.queries_count >= self.max_queries
            or holder._generation != self.pool._generation
        ):
            return False
        con._pool_release_ctr += 1  # the lease's statements and cursors die (_on_release)
        if self.pool._queue._getters:  # someone waits in asyncpg's acquire: hand it over
            holder._release()  # asyncpg's: the handle detached, the holder queued (wakes them)
            holder._setup_inactive_callback()
            return True
        proxy._detach()  # the lease's handle is dead, as after asyncpg's release
        holder._proxy = fresh = PoolConnectionProxy(holder, con)
        self.idle.append(fresh)
        if self.sweeper is None:
            self.sweeper = asyncio.get_running_loop().call_later(self.lifetime, self.sweep)
        return True

    def live(self) -> int:
        """Stacked connections still open (the stats' idle ones besides asyncpg's)."""
        return sum(
            1 for proxy in self.idle if proxy._con is not None and not proxy._con.is_closed()
        )

    def sweep(self) -> None:
        """Terminate the connections not lent for a whole lifetime, above the pool's floor."""
        self.sweeper = None
        pool, unused = self.pool, self.idle[: self.low]
        kept = []
        for proxy in unused:
            con = proxy._con
            if con is None:
                continue
            if pool.get_size() > pool.get_min_size():
                con.terminate()  # the holder goes back to asyncpg, unconnected
            else:
                kept.append(proxy)
        self.idle[: self.low] = kept
        self.low = len(self.idle)
        if self.idle:
            self.sweeper = asyncio.get_running_loop().call_later(self.lifetime, self.sweep)

    async def close(self) -> None:
        """No more stacking, every stacked connection given back, then asyncpg's close."""
        self.closing = True
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None
        idle, self.idle = self.idle, []
        for proxy in idle:
            if proxy._con is not None:
                await self.pool.release(proxy)
        await self.pool.close()
