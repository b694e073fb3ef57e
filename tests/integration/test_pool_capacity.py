"""Past the pool's capacity: one pooled connection per request, nothing hangs.

Ten concurrent idempotent creates once deadlocked a pool of ten for good (each request
held a connection and waited for a second). These tests drive 3 x DB_POOL_MAX requests,
hold every connection, cut the server, and run every route with a pool of ONE
connection: a request that needs two can only time out there.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import grpc
import pymysql
import pytest

from lib.auth.principal import Role
from lib.db import pool as pool_module
from lib.db.pool import Database, DatabaseUnavailable, PoolExhausted, connect
from lib.db.scope import SecondConnectionError, enter_scope, exit_scope
from lib.http.keys import DB
from services.departments.app import create_app
from services.users.app import create_app as create_users_app
from services.users.settings import UsersSettings
from tests.integration.auth_support import KEYS, bearer, settings_for
from tests.integration.points_support import Points, new_id, running_points
from tests.proxy import TcpProxy, through
from tests.servers import DatabaseFactory
from tools import seed

ADMIN = bearer(Role.ADMIN)
POOL_MAX = 10
ENGINES = ["postgresql", "mysql"]


async def departments_named(dsn: str, name: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM departments WHERE name = $1", name))
    finally:
        await conn.close()


def create(client: Any, name: str, key: str | None = None) -> Any:
    headers = {**ADMIN, **({"Idempotency-Key": key} if key else {})}
    return client.post(
        "/v1/departments", json={"name": name, "address": "1 Pool St"}, headers=headers
    )


# --- the HTTP service past capacity ---------------------------------------------------


async def test_three_times_the_pool_of_idempotent_creates_all_succeed(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    client = await aiohttp_client(create_app(settings_for(departments_dsn, db_pool_max=POOL_MAX)))
    run = uuid.uuid4().hex[:8]
    keys = [f"cap-{run}-{i}" for i in range(3 * POOL_MAX)]
    responses = await asyncio.gather(
        *(create(client, f"Cap {run} {i}", k) for i, k in enumerate(keys))
    )
    assert [r.status for r in responses] == [201] * len(keys)
    first = {k: await r.json() for k, r in zip(keys, responses, strict=True)}
    # each key replays its own response, byte for byte, and creates nothing new
    replays = await asyncio.gather(
        *(create(client, f"Cap {run} {i}", k) for i, k in enumerate(keys))
    )
    for key, replay in zip(keys, replays, strict=True):
        assert replay.status == 201
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert await replay.json() == first[key]
    for i in range(len(keys)):
        assert await departments_named(departments_dsn, f"Cap {run} {i}") == 1


async def test_duplicates_of_each_key_mixed_in_create_exactly_one_row_per_key(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    client = await aiohttp_client(create_app(settings_for(departments_dsn, db_pool_max=POOL_MAX)))
    run = uuid.uuid4().hex[:8]
    requests = [(f"Dup {run} {i}", f"dup-{run}-{i}") for i in range(POOL_MAX)] * 3
    responses = await asyncio.gather(*(create(client, name, key) for name, key in requests))
    assert [r.status for r in responses] == [201] * len(requests)
    ids: dict[str, set[str]] = {}
    originals: dict[str, int] = {}
    for (_, key), resp in zip(requests, responses, strict=True):
        ids.setdefault(key, set()).add((await resp.json())["data"]["id"])
        if "Idempotent-Replayed" not in resp.headers:
            originals[key] = originals.get(key, 0) + 1
    assert all(len(found) == 1 for found in ids.values()), ids  # every duplicate replayed
    assert originals == {key: 1 for _, key in requests[:POOL_MAX]}
    for name, _ in requests[:POOL_MAX]:
        assert await departments_named(departments_dsn, name) == 1


async def test_a_full_pool_answers_503_within_the_timeout_then_recovers(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    timeout = 0.5
    app = create_app(
        settings_for(departments_dsn, db_pool_min=1, db_pool_max=2, db_acquire_timeout=timeout)
    )
    client = await aiohttp_client(app)
    assert (await client.get("/v1/departments")).status == 200
    pool = app[DB].pool  # type: ignore[attr-defined]
    held = [await pool.acquire() for _ in range(2)]  # every connection, outside any request
    try:
        started = time.monotonic()
        busy = await asyncio.gather(
            client.get("/v1/departments"), create(client, "never", f"busy-{uuid.uuid4()}")
        )
        elapsed = time.monotonic() - started
        for resp in busy:
            assert resp.status == 503
            assert resp.headers["Retry-After"] == "1"
            problem = await resp.json()
            assert problem["code"] == "SERVICE_UNAVAILABLE"
            assert "busy" in problem["detail"]
        assert timeout * 0.9 <= elapsed < timeout + 3.0  # it waited the timeout, no longer
        assert (await client.get("/health")).status == 200  # no database: still served
    finally:
        for conn in held:
            await pool.release(conn)
    assert (await client.get("/v1/departments")).status == 200
    assert await departments_named(departments_dsn, "never") == 0
    metrics = await (await client.get("/metrics")).text()
    assert 'db_pool_acquire_timeouts_total{service="departments"}' in metrics


async def test_a_create_whose_key_cannot_be_saved_leaves_no_row(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    """The create and its key commit together: a failing key save rolls the create back."""
    bad_key = f"unsavable-{uuid.uuid4().hex}"
    conn = await asyncpg.connect(departments_dsn)
    constraint = f"test_reject_{uuid.uuid4().hex[:8]}"
    await conn.execute(
        f"ALTER TABLE idempotency_keys ADD CONSTRAINT {constraint} CHECK (key <> '{bad_key}')"
    )
    try:
        client = await aiohttp_client(create_app(settings_for(departments_dsn)))
        name = f"Orphan {uuid.uuid4().hex[:8]}"
        resp = await create(client, name, bad_key)
        assert resp.status == 500
        assert (await resp.json())["code"] == "INTERNAL_ERROR"
        assert await departments_named(departments_dsn, name) == 0
        # the same key-less create works: the failure was the key's alone
        assert (await create(client, name)).status == 201
    finally:
        await conn.execute(f"ALTER TABLE idempotency_keys DROP CONSTRAINT {constraint}")
        await conn.close()


async def test_every_departments_route_works_on_a_pool_of_one(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    """A request that needed a second connection could only time out here."""
    app = create_app(
        settings_for(departments_dsn, db_pool_min=1, db_pool_max=1, db_acquire_timeout=2.0)
    )
    client = await aiohttp_client(app)
    name = f"Solo {uuid.uuid4().hex[:8]}"
    made = await create(client, name, f"solo-{uuid.uuid4()}")
    assert made.status == 201, await made.text()
    body = (await made.json())["data"]
    url = f"/v1/departments/{body['id']}"
    assert (await client.get("/v1/departments?limit=5")).status == 200
    assert (await client.get(url)).status == 200
    patched = await client.patch(
        url, json={"address": "2 Solo St"}, headers={**ADMIN, "If-Match": '"1"'}
    )
    assert patched.status == 200
    stale = await client.patch(url, json={"address": "x"}, headers={**ADMIN, "If-Match": '"1"'})
    assert stale.status == 412
    assert (await client.delete(url, headers={**ADMIN, "If-Match": '"2"'})).status == 204
    assert (await client.get("/ready")).status == 200


async def test_the_database_gone_is_a_fast_503_and_the_service_recovers(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    host, port = "127.0.0.1", 5432
    proxy = await TcpProxy(host, port).start()
    app = create_app(settings_for(through(departments_dsn, proxy), db_pool_min=1, db_pool_max=2))
    client = await aiohttp_client(app)
    assert (await client.get("/v1/departments")).status == 200
    await proxy.stop()  # every open connection cut, new ones refused
    for _ in range(2):  # first the cut connection, then a refused reconnect
        resp = await client.get("/v1/departments")
        assert resp.status == 503
        assert (await resp.json())["code"] == "SERVICE_UNAVAILABLE"
        assert resp.headers["Retry-After"] == "1"
    await proxy.start(proxy.port)  # the server is back on the same address
    try:
        assert (await client.get("/v1/departments")).status == 200  # no restart needed
    finally:
        await proxy.stop()


# --- the users list: page, statistics and points on one connection ---------------------


@pytest.fixture(scope="module")
async def seeded_users(migrated_db: Callable[[str], str]) -> AsyncIterator[tuple[str, Points]]:
    users_dsn = migrated_db("users")
    seed.seed_users(users_dsn)
    points_dsn = migrated_db("points")
    seed.seed_points(points_dsn)
    async with running_points(points_dsn) as points:
        yield users_dsn, points


async def test_the_users_list_works_on_a_pool_of_one(
    aiohttp_client: Any, seeded_users: tuple[str, Points]
) -> None:
    users_dsn, points = seeded_users
    settings = UsersSettings.model_validate(
        {
            "service": "users",
            "database_url": users_dsn,
            "db_pool_min": 1,
            "db_pool_max": 1,
            "db_acquire_timeout": 2.0,
            "jwt_public_key": KEYS[1],
            "points_grpc_addr": points.target,
        }
    )
    client = await aiohttp_client(create_users_app(settings))
    moderator = bearer(Role.MODERATOR)
    replies = await asyncio.gather(
        *(client.get("/v1/users?role=CUSTOMER", headers=moderator) for _ in range(6))
    )
    for resp in replies:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["meta"]["statistics"]["count"] == 9
        assert "degraded" not in body["meta"]
        assert {u["points"] for u in body["data"]} >= {93, 13}


# --- points over gRPC: one connection per call -----------------------------------------


async def test_points_rpcs_work_on_a_pool_of_one_and_a_full_pool_is_unavailable(
    migrated_db: Callable[[str], str],
) -> None:
    async with running_points(migrated_db("points"), max_size=1, acquire_timeout=0.5) as points:
        users = [new_id() for _ in range(3)]
        # 3 x (pool of 1) adds, each key sent twice at once: applied once each
        keys = [f"one-{uuid.uuid4().hex}" for _ in users]
        replies = await asyncio.gather(
            *(points.add(u, 5, key=k) for u, k in zip(users, keys, strict=True)),
            *(points.add(u, 5, key=k) for u, k in zip(users, keys, strict=True)),
        )
        assert {r.user_point for r in replies} == {"5"}
        assert (await points.list(users)).user_points == dict.fromkeys(users, 5)
        pool = points.db.pool  # type: ignore[attr-defined]
        held = await pool.acquire()  # the only connection, outside any call
        try:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await points.get(users[0])
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "busy" in (caught.value.details() or "")
        finally:
            pool.release(held)
        assert (await points.get(users[0])).user_point == "5"


# --- lib.db: the scope rule itself, on both engines ------------------------------------


@pytest.fixture(params=ENGINES)
async def db(request: pytest.FixtureRequest, databases: DatabaseFactory) -> AsyncIterator[Database]:
    dsn = databases.create("scope", request.param)
    database = await connect(dsn, min_size=1, max_size=2, acquire_timeout=0.5)
    async with database.acquire() as conn:
        await execute(conn, "CREATE TABLE marks (id INT PRIMARY KEY)")
    yield database
    await database.close()


async def execute(conn: Any, sql: str) -> None:
    if isinstance(conn, asyncpg.Connection):
        await conn.execute(sql)
    else:
        async with conn.cursor() as cur:
            await cur.execute(sql)


async def marks(db: Database) -> list[int]:
    async with db.acquire() as conn:
        if isinstance(conn, asyncpg.Connection):
            return [r[0] for r in await conn.fetch("SELECT id FROM marks ORDER BY id")]
        async with conn.cursor() as cur:
            await cur.execute("SELECT id FROM marks ORDER BY id")
            return [r[0] for r in await cur.fetchall()]


async def test_inside_a_scope_nested_use_lends_the_same_connection(db: Database) -> None:
    token = enter_scope()
    try:
        async with db.transaction() as outer, db.acquire() as inner:
            assert inner is outer
            assert db.stats().in_use == 1
    finally:
        exit_scope(token)


async def test_inside_a_scope_a_second_task_cannot_take_another_connection(db: Database) -> None:
    token = enter_scope()
    try:
        async with db.acquire():

            async def sibling() -> None:
                async with db.acquire():
                    pass

            with pytest.raises(SecondConnectionError):
                await asyncio.create_task(sibling())
        async with db.acquire():  # released: the request may take one again
            pass
    finally:
        exit_scope(token)


async def test_outside_a_scope_tasks_take_their_own_connections(db: Database) -> None:
    gate = asyncio.Event()

    async def hold() -> None:
        async with db.acquire():
            if db.stats().in_use == 2:
                gate.set()
            await gate.wait()

    async with asyncio.timeout(5):
        await asyncio.gather(hold(), hold())


async def insert_then_fail(db: Database, mark: int) -> None:
    async with db.transaction() as conn:
        await execute(conn, f"INSERT INTO marks VALUES ({mark})")
        raise ZeroDivisionError


async def test_a_nested_transaction_is_a_savepoint(db: Database) -> None:
    token = enter_scope()
    try:
        async with db.transaction() as conn:
            await execute(conn, "INSERT INTO marks VALUES (1)")
            with pytest.raises(ZeroDivisionError):
                await insert_then_fail(db, 2)  # rolled back to the savepoint only
            async with db.transaction() as inner:
                await execute(inner, "INSERT INTO marks VALUES (3)")
        assert await marks(db) == [1, 3]
        with pytest.raises(ZeroDivisionError):
            await insert_then_fail(db, 4)
        assert await marks(db) == [1, 3]
    finally:
        exit_scope(token)


async def test_a_full_pool_raises_pool_exhausted_after_the_timeout(db: Database) -> None:
    async with db.acquire(), db.acquire():  # no scope: both connections
        started = time.monotonic()
        with pytest.raises(PoolExhausted) as caught:
            async with db.acquire():
                pass
        elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 0.5 + 3.0
    assert caught.value.status == 503
    assert caught.value.headers["Retry-After"] == "1"
    async with db.acquire():  # and it recovers as soon as one is free
        pass


class CountingTimeouts:
    """asyncio.timeout as lib.db.pool calls it, counting the timers it arms."""

    def __init__(self) -> None:
        self.armed = 0
        self.real = asyncio.timeout

    def __call__(self, delay: float | None) -> asyncio.Timeout:
        self.armed += 1
        return self.real(delay)


async def test_only_an_acquire_that_waits_arms_the_timeout(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    timeouts = CountingTimeouts()
    monkeypatch.setattr(pool_module.asyncio, "timeout", timeouts)
    async with db.acquire() as conn:  # the pool's idle connection: lent at once
        await execute(conn, "SELECT 1")
    assert timeouts.armed == 0
    async with db.acquire(), db.acquire() as second:  # the second is opened: it waits
        await execute(second, "SELECT 1")
        assert timeouts.armed == 1
        with pytest.raises(PoolExhausted):  # a full pool: waits, under the timeout
            async with db.acquire():
                pass
        assert timeouts.armed == 2
    async with db.acquire(), db.acquire():  # both idle now: neither waits
        assert timeouts.armed == 2


async def test_a_waiting_acquire_gets_the_connection_released_meanwhile(db: Database) -> None:
    async def third() -> list[int]:
        async with db.acquire() as conn:
            await execute(conn, "INSERT INTO marks VALUES (3)")
        return await marks(db)

    async with db.acquire() as first, db.acquire():
        waiter = asyncio.create_task(third())
        await until(lambda: waiting_on_the_pool(db), "the waiter queued on the full pool")
        await execute(first, "INSERT INTO marks VALUES (1)")
    assert await asyncio.wait_for(waiter, 5) == [1, 3]


@pytest.mark.parametrize("waits_for", ["a connection released", "a connection opened"])
async def test_a_cancelled_waiter_leaves_the_pool_whole(db: Database, waits_for: str) -> None:
    """Cancelled while it waits (the caller gave up, or the acquire timeout), the driver's
    acquire is told so and puts back what it took: the pool still lends both connections."""
    async with db.acquire():
        if waits_for == "a connection released":
            async with db.acquire():
                waiter = asyncio.create_task(marks(db))
                await until(lambda: waiting_on_the_pool(db), "the waiter queued")
                waiter.cancel()
        else:  # the second connection is being opened for the waiter
            waiter = asyncio.create_task(marks(db))
            await until(lambda: opening_a_connection(db), "a connection being opened")
            waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert db.stats().in_use == 0
    async with db.acquire() as first, db.acquire() as second:
        await execute(first, "SELECT 1")
        await execute(second, "SELECT 1")


async def until(check: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    """Yield to the event loop until `check()` holds: a waiter's state is the event."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        await asyncio.sleep(0)


def waiting_on_the_pool(db: Database) -> bool:
    """Is a task queued for a connection of `db`'s full pool (asyncpg's queue getters,
    aiomysql's condition waiters)? Drivers' internals: no public API tells."""
    pool: Any = getattr(db, "pool")  # noqa: B009  (both engines' Database have one)
    if db.engine == "postgresql":
        return bool(pool._queue._getters)
    return bool(pool._cond._waiters)


def opening_a_connection(db: Database) -> bool:
    """Has a waiter taken a pool slot whose connection is being opened?"""
    pool: Any = getattr(db, "pool")  # noqa: B009
    if db.engine == "postgresql":
        return bool(pool._queue.empty())  # both holders out: one held, one connecting
    return bool(pool._acquiring)


async def test_a_cut_server_raises_database_unavailable(
    request: pytest.FixtureRequest, databases: DatabaseFactory
) -> None:
    for engine, port in (("postgresql", 5432), ("mysql", 3306)):
        proxy = await TcpProxy("127.0.0.1", port).start()
        dsn = through(databases.create("cut", engine), proxy)
        database = await connect(dsn, min_size=1, max_size=1, acquire_timeout=2.0)
        try:
            await proxy.stop()
            with pytest.raises(DatabaseUnavailable):  # the open connection was cut
                async with database.acquire() as conn:
                    await execute(conn, "SELECT 1")
            with pytest.raises(DatabaseUnavailable):  # and a new one is refused
                async with database.acquire() as conn:
                    await execute(conn, "SELECT 1")
        finally:
            await database.close(grace=1.0)


async def test_a_statement_error_surfaces_as_itself(db: Database) -> None:
    """A query's own error (here a duplicate key) is the caller's to handle: not wrapped,
    not confused with a lost connection, and the connection goes back usable."""
    pg = db.engine == "postgresql"
    duplicate = asyncpg.UniqueViolationError if pg else pymysql.IntegrityError
    async with db.acquire() as conn:
        await execute(conn, "INSERT INTO marks VALUES (7)")
    for lend in (db.acquire, db.transaction):
        with pytest.raises(duplicate):
            async with lend() as conn:
                await execute(conn, "INSERT INTO marks VALUES (7)")
    assert await marks(db) == [7]
