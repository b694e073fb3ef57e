"""lib/db/pool's decisions without a server: which errors mean a lost connection, how a
DSN becomes the driver's pool arguments, and connect()'s retries (attempts, jittered
exponential backoff capped, what it logs, what it sets on the pool it returns). The
drivers' create_pool, the clock's sleep and the jitter are recording fakes here;
tests/integration/test_db_pool*.py run the same code against the servers."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

import aiomysql
import asyncpg
import pymysql
import pytest
from prometheus_client import REGISTRY

from lib.db import connecting
from lib.db import pool as pool_module
from lib.db.connecting import (
    DEFAULT_ATTEMPT_TIMEOUT,
    DEFAULT_COMMAND_TIMEOUT,
    _no_reset,
    connect,
)
from lib.db.pool import (
    Database,
    DatabaseUnavailable,
    MyDatabase,
    PgDatabase,
    PoolExhausted,
    PoolStats,
    _closed,
    _lost,
)
from lib.db.scope import SecondConnectionError, enter_scope, exit_scope
from tests.logging_support import capture_logs
from tools.local.service_process import PROCESS_MARGIN

# --- which errors mean the server went away ---------------------------------------------

# every asyncpg pool: each command and each new connection bounded
BOUNDS = {"command_timeout": DEFAULT_COMMAND_TIMEOUT, "timeout": DEFAULT_ATTEMPT_TIMEOUT}


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionResetError(),
        ConnectionRefusedError(),
        asyncpg.ConnectionDoesNotExistError(),
        asyncpg.CannotConnectNowError(),
        asyncpg.AdminShutdownError(),
        asyncpg.CrashShutdownError(),
        asyncpg.TooManyConnectionsError(),
        *(pymysql.OperationalError(code, "gone") for code in (1040, 1053, 2003, 2006, 2013, 2055)),
    ],
    ids=lambda exc: f"{type(exc).__name__}{exc.args[:1]}",
)
def test_connection_errors_are_lost_inside_a_block_and_connecting(exc: BaseException) -> None:
    assert _lost(exc) is True
    assert _lost(exc, connecting=True) is True


@pytest.mark.parametrize(
    "exc",
    [OSError(113, "No route to host"), TimeoutError(), FileNotFoundError()],
    ids=["OSError", "TimeoutError", "FileNotFoundError"],
)
def test_other_os_errors_are_lost_only_while_connecting(exc: BaseException) -> None:
    assert _lost(exc) is False  # a handler's own I/O or timeout inside the block
    assert _lost(exc, connecting=True) is True


@pytest.mark.parametrize(
    "exc",
    [
        pymysql.OperationalError(1213, "Deadlock found"),
        pymysql.OperationalError(1205, "Lock wait timeout"),
        pymysql.OperationalError(),  # no error code at all
        pymysql.OperationalError("2013"),  # a code must be the number
        pymysql.InternalError(2013, "not an OperationalError"),
        pymysql.IntegrityError(1062, "Duplicate entry"),
        asyncpg.UniqueViolationError(),
        RuntimeError("handler failed"),
        ValueError(2013),
    ],
    ids=lambda exc: f"{type(exc).__name__}{exc.args[:1]}",
)
def test_query_errors_are_not_lost(exc: BaseException) -> None:
    assert _lost(exc) is False
    assert _lost(exc, connecting=True) is False


class AsyncpgLike:
    def __init__(self, closed: bool) -> None:
        self.closed_now = closed

    def is_closed(self) -> bool:
        return self.closed_now


class AiomysqlLike:
    def __init__(self, closed: bool) -> None:
        self.closed = closed


class Detached:
    """asyncpg's pool handle once the pool saw the drop: any call raises."""

    def is_closed(self) -> bool:
        raise asyncpg.InterfaceError("connection has been released back to the pool")


class Broken:
    def is_closed(self) -> bool:
        raise RuntimeError("not asyncpg's detached handle")


def test_closed_asks_is_closed_then_closed() -> None:
    assert _closed(Detached()) is True
    assert _closed(AsyncpgLike(True)) is True
    assert _closed(AsyncpgLike(False)) is False
    assert _closed(AiomysqlLike(True)) is True
    assert _closed(AiomysqlLike(False)) is False
    assert _closed(object()) is False  # neither: not known to be closed
    with pytest.raises(RuntimeError):  # only asyncpg's InterfaceError means detached
        _closed(Broken())


def test_pool_stats_in_use() -> None:
    assert PoolStats(size=5, idle=2).in_use == 3
    assert PoolStats(size=0, idle=0).in_use == 0


# --- a DSN becomes the driver's pool ----------------------------------------------------


class CreatePool:
    """A driver's create_pool, recording its arguments and returning a marker pool."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.pool = object()

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        return self.pool


@pytest.fixture
def pg_pools(monkeypatch: pytest.MonkeyPatch) -> CreatePool:
    fake = CreatePool()
    monkeypatch.setattr(asyncpg, "create_pool", fake)
    return fake


@pytest.fixture
def my_pools(monkeypatch: pytest.MonkeyPatch) -> CreatePool:
    fake = CreatePool()
    monkeypatch.setattr(aiomysql, "create_pool", fake)
    return fake


@pytest.mark.parametrize(
    ("dsn", "given"),
    [
        ("postgresql://u:p@db:5433/shop", "postgresql://u:p@db:5433/shop"),
        ("postgres://u@db/shop", "postgres://u@db/shop"),
        ("postgresql+asyncpg://u@db/shop", "postgresql://u@db/shop"),  # the driver suffix
        ("postgres+psycopg://u@db/shop", "postgresql://u@db/shop"),
    ],
)
async def test_a_postgresql_dsn_opens_an_asyncpg_pool(
    pg_pools: CreatePool, dsn: str, given: str
) -> None:
    database = await connecting._open(dsn, 3, 7, True)
    assert isinstance(database, PgDatabase)
    assert database.pool is pg_pools.pool
    assert pg_pools.calls == [((given,), {"min_size": 3, "max_size": 7, "reset": None, **BOUNDS})]
    assert database.release_timeout == DEFAULT_COMMAND_TIMEOUT  # a cancelled command's wait


@pytest.mark.parametrize(
    ("pooler", "uncached"), [("", {}), ("pgbouncer", {"statement_cache_size": 0})]
)
async def test_without_reset_asyncpg_skips_its_reset_query(
    pg_pools: CreatePool, pooler: str, uncached: dict[str, int]
) -> None:
    """POOLER=pgbouncer (ADR 0037): a transaction-mode pooler forwards each transaction to
    any server connection, where a named statement prepared on another is missing."""
    database = await connecting._open("postgresql://u@pgb:6432/shop", 1, 2, False, pooler)
    assert pg_pools.calls == [
        (
            ("postgresql://u@pgb:6432/shop",),
            {"min_size": 1, "max_size": 2, "reset": _no_reset, **BOUNDS, **uncached},
        )
    ]
    assert await _no_reset(object()) is None
    assert isinstance(database, PgDatabase)
    assert database.pool is pg_pools.pool


async def test_a_mysql_dsn_opens_an_aiomysql_pool_of_its_parts(my_pools: CreatePool) -> None:
    database = await connecting._open("mysql://us%40er:p%3Ass%2F@db.example:3307/shop", 2, 9, True)
    assert isinstance(database, MyDatabase)
    assert database.pool is my_pools.pool
    assert my_pools.calls == [
        (
            (),
            {
                "minsize": 2,
                "maxsize": 9,
                "host": "db.example",
                "port": 3307,
                "user": "us@er",
                "password": "p:ss/",
                "db": "shop",
                "autocommit": True,
                "charset": "utf8mb4",
                "init_command": "SET time_zone = '+00:00', tx_isolation = 'READ-COMMITTED'",
                "connect_timeout": DEFAULT_ATTEMPT_TIMEOUT,
            },
        )
    ]


@pytest.mark.parametrize("scheme", ["mysql", "mariadb", "mysql+aiomysql"])
async def test_a_mysql_dsn_without_host_port_or_user_gets_the_defaults(
    my_pools: CreatePool, scheme: str
) -> None:
    database = await connecting._open(f"{scheme}:///Xmas", 1, 1, True)
    assert isinstance(database, MyDatabase)
    (_, kwargs) = my_pools.calls[0]
    assert (kwargs["host"], kwargs["port"], kwargs["user"], kwargs["password"]) == (
        "127.0.0.1",
        3306,
        "root",
        "",
    )
    assert kwargs["db"] == "Xmas"  # only the path's slash is stripped


@pytest.mark.parametrize("dsn", ["sqlite:///tmp/x.db", "http://db/x", "localhost", "pg://db/x"])
async def test_another_scheme_is_refused_by_name(
    pg_pools: CreatePool, my_pools: CreatePool, dsn: str
) -> None:
    scheme = dsn.split("://")[0] if "://" in dsn else ""
    with pytest.raises(ValueError, match="unsupported database URL scheme") as caught:
        await connecting._open(dsn, 1, 1, True)
    assert str(caught.value) == (
        f"unsupported database URL scheme {scheme!r} (postgresql:// or mysql://)"
    )
    assert pg_pools.calls == my_pools.calls == []


# --- connect: retries with jittered exponential backoff ---------------------------------


class Opens:
    """connect()'s _open: fails `failures` times with `error`, then lends a pool."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures, self.error = failures, error
        self.calls: list[tuple[Any, ...]] = []
        self.bounds: list[dict[str, float]] = []
        self.database = PgDatabase(pool=object())  # type: ignore[arg-type]

    async def __call__(self, *args: Any, **bounds: float) -> Any:
        self.calls.append(args)
        self.bounds.append(bounds)
        if len(self.calls) <= self.failures:
            raise self.error
        return self.database


@pytest.fixture
def opening(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Opens]:
    """Installs an Opens as connect()'s _open and returns it."""

    def install(failures: int, error: BaseException | None = None) -> Opens:
        opens = Opens(failures, OSError("refused") if error is None else error)
        monkeypatch.setattr(connecting, "_open", opens)
        return opens

    return install


class Sleeps(list[float]):
    """connect()'s `sleep`: each pause recorded, none waited."""

    async def __call__(self, delay: float) -> None:
        self.append(delay)


def draw() -> float:
    """connect()'s `rng`: the backoff's jitter fixed."""
    return 0.123456


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def retry_delays(attempts: int, base: float, cap: float) -> list[float]:
    return [0.123456 * min(cap, base * 2**attempt) for attempt in range(1, attempts)]


async def test_connect_tries_ten_times_by_default_backing_off_from_200ms_to_3s(
    opening: Callable[..., Opens], sleeps: Sleeps
) -> None:
    opens = opening(100, ConnectionRefusedError("refused"))
    with capture_logs() as logs, pytest.raises(ConnectionRefusedError):
        await connect("postgresql://db/x", sleep=sleeps, rng=draw)
    assert len(opens.calls) == 10
    assert sleeps == pytest.approx(retry_delays(10, 0.2, 3.0))
    assert sleeps[0] == pytest.approx(0.123456 * 0.4)
    assert sleeps[-1] == pytest.approx(0.123456 * 3.0)
    retries = [entry for entry in logs if entry["event"] == "db_connect_retry"]
    assert retries == [
        {
            "event": "db_connect_retry",
            "log_level": "warning",
            "attempt": attempt,
            "error": "refused",
            "delay_s": round(delay, 3),
        }
        for attempt, delay in enumerate(sleeps, start=1)
    ]
    assert retries[0]["delay_s"] == 0.049  # rounded to milliseconds


@pytest.mark.parametrize(
    "error",
    [
        OSError("unreachable"),
        TimeoutError(),
        asyncpg.InvalidPasswordError("no"),
        pymysql.OperationalError(1045, "denied"),
    ],
    ids=["OSError", "TimeoutError", "PostgresError", "MySQLError"],
)
async def test_connect_retries_each_connect_error_then_returns_the_pool(
    opening: Callable[..., Opens], sleeps: Sleeps, error: BaseException
) -> None:
    opens = opening(2, error)
    database = await connect(
        "postgresql://db/x", attempts=3, base_delay=0.5, max_delay=1.5, sleep=sleeps, rng=draw
    )
    assert database is opens.database
    assert opens.calls == [("postgresql://db/x", 2, 10, True, "")] * 3  # the default sizes, reset
    assert sleeps == pytest.approx([0.123456 * 1.0, 0.123456 * 1.5])


@pytest.mark.parametrize(
    ("error", "bounds"),
    [
        (KeyError("bug"), {}),  # not a connect error: not retried
        (OSError("refused"), {"attempts": 0}),  # one attempt at least
        # `wait` bounds the whole: a pause that would end past it (>= 1 s) is not taken
        (OSError("refused"), {"wait": 0.5, "base_delay": 1.0}),
    ],
    ids=["other error", "attempts=0", "past the wait"],
)
async def test_connect_makes_a_single_attempt(
    opening: Callable[..., Opens], sleeps: Sleeps, error: BaseException, bounds: dict[str, float]
) -> None:
    opens = opening(100, error)
    with pytest.raises(type(error)) as caught:
        await connect("postgresql://db/x", sleep=sleeps, rng=lambda: 1.0, **bounds)
    assert caught.value is error
    assert len(opens.calls) == 1
    assert sleeps == []


async def test_connect_sets_the_timeout_and_label_and_exports_the_counter_at_zero(
    opening: Callable[..., Opens], sleeps: Sleeps
) -> None:
    opens = opening(0)
    service = f"unit-{uuid.uuid4().hex[:8]}"
    database = await connect(
        "mysql://db/x", min_size=4, max_size=5, reset=False, acquire_timeout=0.25, service=service
    )
    assert opens.calls == [("mysql://db/x", 4, 5, False, "")]
    assert (database.acquire_timeout, database.service) == (0.25, service)
    sample = {"service": service}
    assert REGISTRY.get_sample_value("db_pool_acquire_timeouts_total", sample) == 0.0
    assert sleeps == []


async def test_connect_hands_the_command_and_connect_bounds_to_every_pool(
    opening: Callable[..., Opens], sleeps: Sleeps
) -> None:
    """DB_COMMAND_TIMEOUT and DB_CONNECT_TIMEOUT reach the driver's pool (each command,
    each new connection), not only connect()'s own first attempt; by default a lease
    waits 3 s and the pool has no label."""
    opens = opening(0)
    database = await connect(
        "postgresql://db/x", command_timeout=1.5, attempt_timeout=2.5, sleep=sleeps, rng=draw
    )
    assert opens.bounds == [{"command_timeout": 1.5, "connect_timeout": 2.5}]
    assert (database.acquire_timeout, database.service) == (3.0, "")


async def test_an_attempt_that_never_answers_ends_at_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A black-holed server: the attempt is cut at `attempt_timeout`, not waited for."""
    never = asyncio.Event()

    async def hangs(*args: Any, **bounds: float) -> Any:
        await never.wait()

    monkeypatch.setattr(connecting, "_open", hangs)
    attempt = asyncio.create_task(connect("postgresql://db/x", attempts=1, attempt_timeout=0.01))
    done, _ = await asyncio.wait({attempt}, timeout=PROCESS_MARGIN)
    assert done == {attempt}, "the attempt outlived its bound"
    with pytest.raises(TimeoutError):
        attempt.result()


async def test_a_retry_without_a_message_is_logged_with_the_error_s_name(
    opening: Callable[..., Opens], sleeps: Sleeps
) -> None:
    opening(1, ConnectionResetError())
    with capture_logs() as logs:
        await connect("postgresql://db/x", attempts=2, sleep=sleeps, rng=draw)
    retries = [entry["error"] for entry in logs if entry["event"] == "db_connect_retry"]
    assert retries == ["ConnectionResetError"]


@pytest.mark.parametrize(("failures", "logged"), [(0, []), (1, [2]), (2, [3])])
async def test_a_connection_after_retries_is_logged_with_their_count(
    opening: Callable[..., Opens], sleeps: Sleeps, failures: int, logged: list[int]
) -> None:
    opening(failures)
    with capture_logs() as logs:
        await connect("postgresql://db/x", attempts=3, sleep=sleeps, rng=draw)
    assert [e["attempts"] for e in logs if e["event"] == "db_connected"] == logged


# --- lending: a driver's acquire that answers at once, waits, fails, or is cancelled ---


class Driver(Database):
    """A Database whose driver acquire is `get()` (a coroutine the test writes) and whose
    release is recorded; the test reads what the lending code did with them."""

    engine = "postgresql"

    def __init__(self, get: Callable[[], Awaitable[Any]], service: str = "") -> None:
        self.get, self.service, self.released = get, service, []
        self.discarded: list[Any] = []

    def _get(self) -> Awaitable[Any]:
        return self.get()

    def _put(self, conn: Any) -> Awaitable[None]:
        self.released.append(conn)
        return asyncio.sleep(0)

    def _discard(self, conn: Any) -> None:
        self.discarded.append(conn)

    def _transaction(self, conn: Any) -> AbstractAsyncContextManager[None]:
        return nullcontext()

    async def ping(self) -> None:
        raise NotImplementedError

    def stats(self) -> PoolStats:
        raise NotImplementedError

    async def close(self, grace: float = 5.0) -> None:
        raise NotImplementedError


def at_once(conn: Any) -> Callable[[], Awaitable[Any]]:
    async def get() -> Any:
        return conn

    return get


def raising(exc: BaseException, *, after: asyncio.Future[None] | None = None) -> Any:
    async def get() -> Any:
        if after is not None:
            await after
        raise exc

    return get


async def test_a_waiting_acquire_is_lent_what_the_driver_gives() -> None:
    freed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    conn = AsyncpgLike(False)

    async def get() -> Any:
        await freed
        return conn

    db = Driver(get)
    lending = asyncio.create_task(db._lend())
    await asyncio.sleep(0)
    assert not lending.done()
    freed.set_result(None)
    assert await lending is conn


@pytest.mark.parametrize("waits", [False, True], ids=["at once", "after a wait"])
@pytest.mark.parametrize(
    "exc", [OSError(113, "No route to host"), ConnectionRefusedError()], ids=["OSError", "refused"]
)
async def test_a_connection_that_cannot_be_opened_is_unavailable(
    exc: BaseException, waits: bool
) -> None:
    opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    db = Driver(raising(exc, after=opened if waits else None))
    lending = asyncio.create_task(db._lend())
    await asyncio.sleep(0)
    opened.set_result(None)
    with pytest.raises(DatabaseUnavailable) as caught:
        await lending
    assert str(caught.value) == "the database does not answer"
    assert caught.value.status == 503
    assert caught.value.__cause__ is exc


async def test_another_acquire_error_is_raised_as_itself() -> None:
    with pytest.raises(KeyError, match="driver bug"):
        await Driver(raising(KeyError("driver bug")))._lend()


async def test_a_full_pool_is_exhausted_after_the_timeout_and_counted() -> None:
    service = f"unit-{uuid.uuid4().hex[:8]}"
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def get() -> Any:
        await never

    db = Driver(get, service=service)
    db.acquire_timeout = 0.05
    async with asyncio.timeout(db.acquire_timeout + 3.0):  # no bound at all fails, not hangs
        with pytest.raises(PoolExhausted) as caught:
            await db._lend()
    assert str(caught.value) == "every database connection stayed busy for 0.05 s"
    assert caught.value.__cause__ is None
    assert caught.value.headers["Retry-After"] == "1"
    assert REGISTRY.get_sample_value("db_pool_acquire_timeouts_total", {"service": service}) == 1.0
    assert never.cancelled()  # the driver was told


@pytest.mark.parametrize("then", ["waits again", "returns"])
async def test_a_cancellation_reaches_the_driver_which_may_go_on(then: str) -> None:
    """What the task throws in (a cancellation) is the driver's to handle: a driver that
    handles it and waits again, or answers, is followed."""
    loop = asyncio.get_running_loop()
    first: asyncio.Future[None] = loop.create_future()
    second: asyncio.Future[str] = loop.create_future()

    async def get() -> Any:
        try:
            await first
        except asyncio.CancelledError:
            if then == "returns":
                return "late"
            return await second
        return "never"

    lending = asyncio.create_task(Driver(get)._lend())
    await asyncio.sleep(0)
    lending.cancel()
    await asyncio.sleep(0)
    if then == "waits again":
        assert not lending.done()
        second.set_result("after the cancel")
        assert await lending == "after the cancel"
    else:
        assert await lending == "late"


# --- a lease: given back, lost connections, the request's scope, tracing ----------------


@pytest.mark.parametrize(
    ("conn", "error"),
    [
        (AsyncpgLike(False), ConnectionResetError("reset")),
        (AsyncpgLike(False), pymysql.OperationalError(2013, "Lost connection")),
        (AsyncpgLike(True), RuntimeError("internal state")),  # asyncpg's report of a drop
        (AiomysqlLike(True), RuntimeError("internal state")),
        (Detached(), asyncpg.InterfaceError("connection has been released back to the pool")),
    ],
    ids=["lost", "mysql lost", "closed asyncpg", "closed aiomysql", "detached asyncpg"],
)
async def test_a_block_whose_connection_was_lost_is_unavailable(
    conn: Any, error: BaseException
) -> None:
    db = Driver(at_once(conn))
    with pytest.raises(DatabaseUnavailable) as caught:
        async with db.acquire():
            raise error
    assert str(caught.value) == "the database connection was lost"
    assert caught.value.__cause__ is error
    assert db.released == [conn]  # given back first


@pytest.mark.parametrize("error", [RuntimeError("handler"), pymysql.OperationalError(1213, "x")])
async def test_a_block_error_on_a_live_connection_is_raised_as_itself(
    error: BaseException,
) -> None:
    conn = AiomysqlLike(False)
    db = Driver(at_once(conn))
    with pytest.raises(type(error)) as caught:
        async with db.acquire():
            raise error
    assert caught.value is error
    assert db.released == [conn]
    assert db.discarded == []


@pytest.mark.parametrize(
    "error", [TimeoutError(), asyncpg.ReadOnlySQLTransactionError("read-only transaction")]
)
async def test_a_command_that_timed_out_or_met_a_standby_is_unavailable_and_dropped(
    error: BaseException,
) -> None:
    """A command past DB_COMMAND_TIMEOUT (a frozen or cut-off server) or a write answered
    by a demoted primary: 503, and the connection is closed before it goes back, never
    lent again (a TimeoutError of the handler's own cannot be told apart: it ends alike)."""
    conn = AsyncpgLike(False)
    db = Driver(at_once(conn))
    with pytest.raises(DatabaseUnavailable) as caught:
        async with db.acquire():
            raise error
    assert caught.value.__cause__ is error
    assert db.discarded == [conn]
    assert db.released == [conn]


async def test_a_closed_connection_after_a_clean_block_is_just_given_back() -> None:
    conn = AsyncpgLike(False)
    db = Driver(at_once(conn))
    async with db.acquire() as lent:
        assert lent is conn  # the driver's connection, lent at once
        conn.closed_now = True
    assert db.released == [conn]


async def test_inside_a_scope_another_database_is_a_second_connection() -> None:
    """Nested use (an acquire inside a transaction) lends the held connection again and
    takes none from the driver; another database's acquire is refused."""
    one, two = Driver(at_once("one")), Driver(at_once("two"))
    token = enter_scope()
    try:
        async with one.transaction() as held:
            async with one.acquire() as again:
                assert again is held
                assert held == "one"
            assert one.released == []  # the nested lease gave nothing back
            with pytest.raises(SecondConnectionError) as caught:
                async with two.acquire():
                    pass
            assert str(caught.value) == (
                "this request already holds a pooled connection: use it (one per request)"
            )
        assert one.released == ["one"]
        async with two.acquire() as other:  # given back: the request may take another
            assert other == "two"
        assert two.released == ["two"]
    finally:
        exit_scope(token)


async def test_with_tracing_on_the_lent_connection_is_traced_for_its_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrapped: list[tuple[Any, str]] = []

    def traced(conn: Any, engine: str) -> Any:
        wrapped.append((conn, engine))
        return ("traced", conn)

    monkeypatch.setattr(pool_module, "traced", traced)
    db = Driver(at_once("conn"))
    db.engine = "mysql"
    async with db.acquire() as lent:
        assert lent == "conn"  # tracing off: the driver's connection
    monkeypatch.setattr(pool_module.tracing, "ENABLED", True)
    async with db.acquire() as lent:
        assert lent == ("traced", "conn")
    assert wrapped == [("conn", "mysql")]
    assert db.released == ["conn", "conn"]


# --- the engines' close and stats over their drivers' pools -----------------------------


class PgPool:
    def __init__(self, closes: bool) -> None:
        self.closes, self.terminated = closes, False

    async def close(self) -> None:
        if not self.closes:
            await asyncio.get_running_loop().create_future()

    def terminate(self) -> None:
        self.terminated = True

    def get_size(self) -> int:
        return 4

    def get_idle_size(self) -> int:
        return 1


class MyPool:
    def __init__(self, closes: bool) -> None:
        self.closes, self.calls = closes, []
        self.size, self.freesize = 5, 2

    def close(self) -> None:
        self.calls.append("close")

    async def wait_closed(self) -> None:
        self.calls.append("wait_closed")
        if not self.closes:
            self.closes = True  # terminated: the next wait ends
            await asyncio.get_running_loop().create_future()

    def terminate(self) -> None:
        self.calls.append("terminate")


async def closed_within(database: PgDatabase | MyDatabase, grace: float) -> float:
    """close(grace) bounded by the test's own margin -> the seconds it took."""
    assert inspect.signature(type(database).close).parameters["grace"].default == 5.0
    started = time.monotonic()
    await asyncio.wait_for(database.close(grace=grace), PROCESS_MARGIN)
    return time.monotonic() - started


@pytest.mark.parametrize("closes", [True, False])
async def test_postgresql_close_waits_5s_then_terminates(closes: bool) -> None:
    pool = PgPool(closes)
    took = await closed_within(PgDatabase(pool), 0.05)  # type: ignore[arg-type]
    assert pool.terminated is not closes
    assert closes or 0.05 <= took < 5.0  # the grace given, not the default, then terminate


@pytest.mark.parametrize("closes", [True, False])
async def test_mysql_close_waits_5s_then_terminates(closes: bool) -> None:
    pool = MyPool(closes)
    took = await closed_within(MyDatabase(pool), 0.05)
    if closes:
        assert pool.calls == ["close", "wait_closed"]
    else:
        assert pool.calls == ["close", "wait_closed", "terminate", "wait_closed"]
        assert 0.05 <= took < 5.0


def test_stats_read_each_drivers_pool() -> None:
    assert PgDatabase(PgPool(True)).stats() == PoolStats(size=4, idle=1)  # type: ignore[arg-type]
    assert MyDatabase(MyPool(True)).stats() == PoolStats(size=5, idle=2)
