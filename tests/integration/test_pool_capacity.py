"""Past the pool's capacity: one pooled connection per request, nothing hangs.

Ten concurrent idempotent creates once deadlocked a pool of ten for good (each request
held a connection and waited for a second). These tests drive 3 x DB_POOL_MAX requests,
hold every connection, cut the server, and run every route with a pool of ONE
connection: a request that needs two can only time out there. The pool's own lending rules
(scope, timeouts, waiters, a cut connection) are test_db_pool_lending.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import grpc
import pytest

from lib.auth.principal import Role
from lib.http.keys import DB
from services.departments.app import create_app
from services.users.app import create_app as create_users_app
from services.users.settings import UsersSettings
from tests import pg
from tests.integration.auth_support import KEYS, Bearer, bearer, settings_for
from tests.integration.points_support import Points, new_id, running_points
from tests.proxy import TcpProxy, through
from tools.local import seed

ADMIN = Bearer(Role.ADMIN)
POOL_MAX = 10
ENGINES = ["postgresql", "mysql"]


async def departments_named(dsn: str, name: str) -> int:
    return int(await pg.fetchval(dsn, "SELECT count(*) FROM departments WHERE name = $1", name))


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
    # every connection, outside any request: leased from the service's Database
    async with contextlib.AsyncExitStack() as held:
        for _ in range(2):
            await held.enter_async_context(app[DB].acquire())
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
            # the test is about the users pool of one: points answering late under load
            # (the default deadline is 0.5 s) must not mark the list degraded
            "points_timeout": 10.0,
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
