"""One small interface over asyncpg and aiomysql pools, chosen by the DSN's scheme.

`Database.acquire()` lends a connection, `Database.transaction()` lends one inside a
transaction (committed on success, rolled back on any exception; nested, a savepoint; the
outermost then runs lib.db.committed's actions), `ping()` checks the server for /ready,
`stats()` feeds the pool gauge. Pools are opened by lib/db/connecting.py's `connect()`.
Leases go through the drivers' public acquire and release only.

A server that freezes or is cut off answers nothing and closes nothing: every PostgreSQL
command is bounded by `command_timeout` (asyncpg's; a connection that timed out is
terminated, never lent again), each new connection by `connect_timeout`. asyncpg has no
client-side TCP keepalive (MagicStack/asyncpg#606), so the command timeout is what notices a
dead peer; aiomysql has no per-command timeout at all (ADR 0033).

Inside a request's scope (lib.db.scope) a request holds at most one connection: nested
acquires lend it again, a concurrent second one is refused. Nothing waits forever: a full
pool raises `PoolExhausted` after `acquire_timeout` seconds and a lost or refused server
connection, a command that timed out, or a server that no longer takes writes (a demoted
primary, no member of a multi-host list writable) raises `DatabaseUnavailable` — both 503
SERVICE_UNAVAILABLE with Retry-After.
Traced (lib/db/traced.py): in a sampled span each generated query's span has its sqlc name.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import pymysql

from lib import tracing
from lib.db.committed import Collecting
from lib.db.scope import SecondConnectionError, current_scope
from lib.db.traced import traced, unwrap
from lib.errors import ServiceUnavailable
from lib.metrics import DB_POOL_TIMEOUTS

DEFAULT_ACQUIRE_TIMEOUT = 3.0
# errors that mean "the server is gone or refuses us", not "this query is wrong"
CONNECTION_LOST = (
    ConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.TargetServerAttributeNotMatched,  # every host up, none takes writes
)
# a connection not to be lent again: the server did not answer in time (frozen, cut off)
# or no longer takes writes (a primary demoted under it)
STALE = (TimeoutError, asyncpg.ReadOnlySQLTransactionError)
MYSQL_CONNECTION_LOST = {1040, 1053, 2003, 2006, 2013, 2055}  # too many, shutdown, gone, lost


class PoolExhausted(ServiceUnavailable):
    """Every pooled connection stayed busy for the whole acquire timeout."""


class DatabaseUnavailable(ServiceUnavailable):
    """The database server refused or dropped the connection."""


def _lost(exc: BaseException, *, connecting: bool = False) -> bool:
    """Did the server go away? While connecting any OSError counts (refused, unreachable);
    inside a block only connection errors do (a handler's own I/O does not; a timeout is
    STALE: a command past its bound cannot be told from the handler's own)."""
    if isinstance(exc, CONNECTION_LOST) or (connecting and isinstance(exc, OSError)):
        return True
    return isinstance(exc, pymysql.OperationalError) and bool(
        exc.args and exc.args[0] in MYSQL_CONNECTION_LOST
    )


def _closed(conn: Any) -> bool:
    """Did the server drop this connection mid-call? asyncpg may report that as an internal
    state error (InternalClientError) rather than a connection error, and once its pool saw
    the drop, the lease's handle is detached: any call through it raises InterfaceError."""
    is_closed = getattr(conn, "is_closed", None)  # asyncpg; aiomysql: .closed
    if not callable(is_closed):
        return bool(getattr(conn, "closed", False))
    try:
        return bool(is_closed())
    except asyncpg.InterfaceError:  # detached by asyncpg's pool: the connection is gone
        return True


@dataclass(frozen=True, slots=True)
class PoolStats:
    size: int
    idle: int

    @property
    def in_use(self) -> int:
        return self.size - self.idle


class Database(ABC):
    engine: str
    service: str = ""  # the metrics label, set by the app that owns the pool
    acquire_timeout: float = DEFAULT_ACQUIRE_TIMEOUT
    release_timeout: float | None = None  # a release waiting on a cancelled command

    @abstractmethod
    def _get(self) -> Awaitable[Any]:
        """The driver's acquire of a pooled connection (the caller bounds the wait)."""

    @abstractmethod
    def _put(self, conn: Any) -> Awaitable[None]:
        """The driver's release of a lent connection."""

    @abstractmethod
    def _discard(self, conn: Any) -> None:
        """Close a lent connection at once; its release then gives the pool a new one."""

    @abstractmethod
    def _transaction(self, conn: Any) -> AbstractAsyncContextManager[None]:
        """BEGIN/COMMIT on `conn`, or a savepoint when it is in a transaction already."""

    @abstractmethod
    async def ping(self) -> None: ...

    @abstractmethod
    def stats(self) -> PoolStats: ...

    @abstractmethod
    async def close(self, grace: float = 5.0) -> None:
        """Close gracefully, or terminate the connections after `grace` seconds."""

    def acquire(self) -> AbstractAsyncContextManager[Any]:
        return _Lease(self)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self.acquire() as conn, Collecting(), self._transaction(unwrap(conn)):
            yield conn  # Collecting: after_commit actions run once the outermost commits

    async def _lend(self) -> Any:
        """A pooled connection, waited for at most `acquire_timeout` seconds (asyncio.timeout,
        not the drivers' timeout=, which wait_for()s a task per acquire)."""
        try:
            async with asyncio.timeout(self.acquire_timeout):
                return await self._get()
        except TimeoutError:
            DB_POOL_TIMEOUTS.labels(self.service).inc()
            raise PoolExhausted(
                f"every database connection stayed busy for {self.acquire_timeout:g} s"
            ) from None
        except Exception as exc:
            if _lost(exc, connecting=True):
                raise DatabaseUnavailable("the database does not answer") from exc
            raise


class _Lease:
    """`Database.acquire()`: a class, not a generator context manager (the hot path).

    Inside a request's scope a connection the same task already holds is lent again
    (nested use); another task asking while it is held is refused; otherwise a pooled
    connection is taken, bound to the scope, and given back on exit. A connection lost
    under the block surfaces as DatabaseUnavailable.
    """

    __slots__ = ("conn", "db", "nested", "scope")

    def __init__(self, db: Database) -> None:
        self.db, self.scope, self.conn, self.nested = db, current_scope(), None, False

    async def __aenter__(self) -> Any:
        scope = self.scope
        if scope is not None and scope.conn is not None:
            if scope.database is not self.db or scope.owner is not asyncio.current_task():
                raise SecondConnectionError(
                    "this request already holds a pooled connection: use it (one per request)"
                )
            self.nested = True
            conn = scope.conn  # nested use: the same connection, the same transaction
        else:
            conn = self.conn = await self.db._lend()
            if scope is not None:
                scope.conn, scope.database, scope.owner = conn, self.db, asyncio.current_task()
        # inside a sampled span: the generated queries' spans (lib/db/traced.py)
        return traced(conn, self.db.engine) if tracing.ENABLED else conn

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if self.nested:
            return
        conn, scope = self.conn, self.scope
        if scope is not None:
            scope.conn = scope.database = scope.owner = None
        lost = exc is not None and (_lost(exc) or _closed(conn))  # before it goes back
        stale = isinstance(exc, STALE)
        if stale:
            self.db._discard(conn)
        try:
            await self.db._put(conn)
        except TimeoutError as late:
            # the release waited its timeout for a server that never answered (a cancelled
            # command's end, or the reset): a 503 for a lease that ended well; any other
            # exception, a cancellation among them, goes on as itself
            if exc is None:
                raise DatabaseUnavailable("the database did not answer in time") from late
        if isinstance(exc, TimeoutError):
            raise DatabaseUnavailable("the database did not answer in time") from exc
        if lost or stale:
            raise DatabaseUnavailable("the database connection was lost") from exc


class PgDatabase(Database):
    engine = "postgresql"

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self.pool = pool

    def _get(self) -> Awaitable[Any]:
        return self.pool.acquire()

    def _put(self, conn: Any) -> Awaitable[None]:
        # asyncpg's documented bound for the whole release (its own, per step, is not)
        return self.pool.release(conn, timeout=self.release_timeout)

    def _discard(self, conn: Any) -> None:
        conn.terminate()

    def _transaction(self, conn: Any) -> AbstractAsyncContextManager[None]:
        transaction: AbstractAsyncContextManager[None] = conn.transaction()  # nested: SAVEPOINT
        return transaction

    async def ping(self) -> None:
        async with self.acquire() as conn:
            await conn.fetchval("SELECT 1")

    def stats(self) -> PoolStats:
        return PoolStats(self.pool.get_size(), self.pool.get_idle_size())

    async def close(self, grace: float = 5.0) -> None:
        try:
            await asyncio.wait_for(self.pool.close(), grace)
        except TimeoutError:
            self.pool.terminate()


class MyDatabase(Database):
    engine = "mysql"

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self._depth: dict[int, int] = {}  # id(conn) -> open transactions and savepoints

    def _get(self) -> Awaitable[Any]:
        acquiring: Awaitable[Any] = self.pool.acquire()
        return acquiring

    def _put(self, conn: Any) -> Awaitable[None]:
        releasing: Awaitable[None] = self.pool.release(conn)
        return releasing

    def _discard(self, conn: Any) -> None:
        conn.close()

    @asynccontextmanager
    async def _transaction(self, conn: Any) -> AsyncIterator[None]:
        depth = self._depth.get(id(conn), 0)
        savepoint = f"fixup_sp{depth}"
        if depth:
            async with conn.cursor() as cur:
                await cur.execute(f"SAVEPOINT {savepoint}")
        else:
            await conn.begin()
        self._depth[id(conn)] = depth + 1
        try:
            yield
        except BaseException:
            if depth:
                async with conn.cursor() as cur:
                    await cur.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
            else:
                await conn.rollback()
            raise
        finally:
            if depth:
                self._depth[id(conn)] = depth
            else:
                del self._depth[id(conn)]
        if depth:
            async with conn.cursor() as cur:
                await cur.execute(f"RELEASE SAVEPOINT {savepoint}")
        else:
            await conn.commit()

    async def ping(self) -> None:
        async with self.acquire() as conn, conn.cursor() as cur:
            await cur.execute("SELECT 1")

    def stats(self) -> PoolStats:
        return PoolStats(int(self.pool.size), int(self.pool.freesize))

    async def close(self, grace: float = 5.0) -> None:
        self.pool.close()
        try:
            await asyncio.wait_for(self.pool.wait_closed(), grace)
        except TimeoutError:
            self.pool.terminate()
            await self.pool.wait_closed()
