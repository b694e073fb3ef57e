"""GET /v1/users on the seed data: exact statistics and points, filters, paging, auth,
degraded mode with the points service down, and count/statistics running concurrently
with the page -> points chain (proven with latency proxies in front of both servers)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from lib.auth.principal import Role
from lib.clients.points import PointsClient
from lib.grpc.client import ChannelPool
from lib.http.keys import DB
from services.users.app import create_app
from services.users.db import users as q
from services.users.db.models import UserRole
from services.users.settings import UsersSettings
from tests import pg
from tests.integration.auth_support import KEYS, Bearer, bearer
from tests.integration.points_support import Points, running_points
from tests.proxy import TcpProxy, through
from tools.local import seed

POINTS = {f"{u.first_name} {u.last_name}": u.points for u in seed.CUSTOMERS}


MODERATOR = Bearer(Role.MODERATOR)
POINTS_TIMEOUT = 0.3  # one call's deadline when points answers nothing


def settings(users_dsn: str, points_addr: str, **extra: Any) -> UsersSettings:
    return UsersSettings.model_validate(
        {
            "service": "users",
            "database_url": users_dsn,
            "jwt_public_key": SecretStr(KEYS[1]),
            "points_grpc_addr": points_addr,
            "rate_limit_ip_rate": 1e6,
            "rate_limit_ip_burst": 10**6,
            "rate_limit_user_rate": 1e6,
            "rate_limit_user_burst": 10**6,
            **extra,
        }
    )


@pytest.fixture(scope="module")
def users_dsn(migrated_db: Callable[[str], str]) -> str:
    dsn = migrated_db("users")
    seed.seed_users(dsn)
    return dsn


@pytest.fixture(scope="module")
async def seeded_points(migrated_db: Callable[[str], str]) -> AsyncIterator[Points]:
    dsn = migrated_db("points")
    seed.seed_points(dsn)
    async with running_points(dsn) as server:
        yield server


@pytest.fixture
async def client(aiohttp_client: Any, users_dsn: str, seeded_points: Points) -> Any:
    return await aiohttp_client(create_app(settings(users_dsn, seeded_points.target)))


async def listing(client: Any, query: str = "", headers: dict[str, str] = MODERATOR) -> Any:
    resp = await client.get(f"/v1/users?{query}", headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_seed_statistics_and_points_are_exact(client: Any) -> None:
    body = await listing(client, "role=CUSTOMER")
    stats = body["meta"]["statistics"]
    assert stats == {
        "count": 9,
        "age": {"min": 22, "max": 40, "avg": "31.22"},
        "salary": {"min": "48000.00", "max": "90000.00", "avg": "68333.33"},
    }
    assert body["meta"]["total"] == 9
    assert "degraded" not in body["meta"]
    got = {f"{u['first_name']} {u['last_name']}": u["points"] for u in body["data"]}
    assert got == POINTS
    george = next(u for u in body["data"] if u["last_name"] == "Costanza")
    assert (george["age"], george["salary"], george["role"]) == (40, "90000.00", "CUSTOMER")
    assert set(george) == {
        "id", "email", "first_name", "last_name", "phone_number", "role", "verified",
        "department_id", "age", "salary", "picture_url", "points", "version", "created_at",
    }  # fmt: skip


async def test_everyone_including_the_admin(client: Any) -> None:
    body = await listing(client)
    assert body["meta"]["total"] == 10
    admin = next(u for u in body["data"] if u["role"] == "ADMIN")
    assert (admin["points"], admin["age"], admin["salary"]) == (0, None, None)
    # the admin has no age or salary: the statistics are the customers' ones
    assert body["meta"]["statistics"]["age"]["avg"] == "31.22"


@pytest.mark.parametrize(
    ("query", "last_names"),
    [
        (f"department_id={seed.HR}", ["Brown", "Johnson", "Smith"]),
        ("search=ALI", ["Johnson"]),
        ("search=example.com&department_id=" + seed.IT, ["Baker", "Costanza", "Malcolm"]),
        ("search=%25", []),  # a literal %, not a wildcard
        ("search=_", []),
        ("role=ADMIN", ["Admin"]),
        ("orderby=age&sort=desc&role=CUSTOMER&limit=3", ["Costanza", "Malcolm", "Brown"]),
        ("orderby=salary&role=CUSTOMER&limit=2", ["Baker", "Gallagher"]),
        ("orderby=first_name&sort=desc&limit=2", ["Malcolm", "Baker"]),
        ("role=CUSTOMER&limit=4&page=3", ["Smith"]),
    ],
)
async def test_filters_orders_and_pages(client: Any, query: str, last_names: list[str]) -> None:
    body = await listing(client, query)
    assert [u["last_name"] for u in body["data"]] == last_names


@pytest.mark.parametrize(
    "query",
    ["role=KING", "department_id=xyz", "verified=maybe", "orderby=password", "sort=up",
     "limit=0", "search=" + "a" * 101, "colour=red"],
)  # fmt: skip
async def test_bad_parameters_are_400(client: Any, query: str) -> None:
    resp = await client.get(f"/v1/users?{query}", headers=MODERATOR)
    assert resp.status == 400
    assert (await resp.json())["code"] == "VALIDATION_ERROR"


async def test_only_moderators_and_admins(client: Any) -> None:
    assert (await client.get("/v1/users")).status == 401
    for role in (Role.CUSTOMER, Role.PROVIDER):
        assert (await client.get("/v1/users", headers=bearer(role))).status == 403
    assert (await client.get("/v1/users", headers=bearer(Role.ADMIN))).status == 200


async def test_degraded_when_points_is_down_and_fast_once_the_breaker_opens(
    aiohttp_client: Any, users_dsn: str
) -> None:
    # a black hole: connections are accepted and never answered, so calls hit the deadline
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    blackhole = await asyncio.start_server(hold, "127.0.0.1", 0)
    blackhole_port = blackhole.sockets[0].getsockname()[1]
    try:
        app = create_app(
            settings(
                users_dsn,
                f"127.0.0.1:{blackhole_port}",
                points_timeout=POINTS_TIMEOUT,
                points_breaker_threshold=2,
                points_breaker_reset=60,
            )
        )
        client = await aiohttp_client(app)
        timings = []
        for _ in range(4):
            started = time.perf_counter()
            body = await listing(client, "role=CUSTOMER&limit=3")
            timings.append(time.perf_counter() - started)
            assert body["meta"]["degraded"] == ["points"]
            assert [u["points"] for u in body["data"]] == [None, None, None]
            assert body["meta"]["statistics"]["count"] == 9  # the rest is served
        assert min(timings[:2]) >= POINTS_TIMEOUT, timings  # the deadline, twice
        # breaker open: a call that went out would wait the whole deadline again
        assert max(timings[2:]) < POINTS_TIMEOUT, timings
    finally:
        for writer in held:
            writer.close()
        blackhole.close()


async def test_degraded_with_the_points_server_stopped(
    aiohttp_client: Any, users_dsn: str, migrated_db: Callable[[str], str]
) -> None:
    dsn = migrated_db("points")
    seed.seed_points(dsn)
    async with running_points(dsn) as server:
        client = await aiohttp_client(create_app(settings(users_dsn, server.target)))
        live = await listing(client, "role=CUSTOMER")
        assert "degraded" not in live["meta"]
    body = await listing(client, "role=CUSTOMER")  # the server is gone now
    assert body["meta"]["degraded"] == ["points"]
    assert body["meta"]["total"] == 9


async def test_statistics_run_concurrently_with_the_page_and_points_chain(
    aiohttp_client: Any, users_dsn: str, seeded_points: Points
) -> None:
    """Each step's cost through the latency proxies is measured the same way the handler
    pays it; the list must cost about max(statistics, page + points), not their sum."""
    parts = urlsplit(users_dsn)
    pg_proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    host, port = seeded_points.target.rsplit(":", 1)
    grpc_proxy = await TcpProxy(host, int(port)).start()
    slow_dsn, slow_points = through(users_dsn, pg_proxy), f"127.0.0.1:{grpc_proxy.port}"
    pool = ChannelPool(slow_points, 1)
    client_of_points = PointsClient(pool, timeout=10)
    try:
        app = create_app(
            settings(
                slow_dsn, slow_points, points_timeout=10, db_pool_min=2, points_grpc_pool_size=1
            )
        )
        client = await aiohttp_client(app)
        filters = {"role": UserRole.CUSTOMER, "department_id": None, "verified": None}
        page = {"orderby": "last_name", "sort": "asc", "row_offset": 0, "row_limit": 100}
        ids = [str(uuid.uuid4()) for _ in range(9)]

        db = app[DB]  # the handler's own pool: acquire, query, release as it pays them

        async def stats() -> None:
            async with db.acquire() as conn:
                await q.user_statistics_summary(conn, **filters)  # the handler's, no search

        async def rows() -> None:
            async with db.acquire() as conn:
                await q.list_users(conn, search=None, **filters, **page)

        async def points_call() -> None:
            await client_of_points.get_user_list_points(ids)

        async def the_list() -> None:
            body = await listing(client, "role=CUSTOMER")
            assert body["meta"]["statistics"]["count"] == 9
            assert "degraded" not in body["meta"]

        async def timed(step: Callable[[], Any]) -> float:
            started = time.perf_counter()
            await step()
            return time.perf_counter() - started

        for step in (stats, rows, points_call, the_list, the_list):  # warm everything
            await step()
        pg_proxy.delay = grpc_proxy.delay = 0.2
        t_stats, t_rows, t_points = [await timed(s) for s in (stats, rows, points_call)]
        # the least of three: a run the scheduler of a loaded machine held up says nothing
        # about how the handler orders its calls
        total = min([await timed(the_list) for _ in range(3)])
        sequential = t_stats + t_rows + t_points
        concurrent = max(t_stats, t_rows + t_points)
        assert t_stats >= 0.2 and t_rows >= 0.2 and t_points >= 0.2  # noqa: PT018  (delayed)
        assert total < sequential - 0.5 * t_stats, (
            f"total {total:.2f}s vs sequential {sequential:.2f}s: not concurrent"
        )
        assert total < concurrent * 1.25 + 0.05, (total, concurrent)
    finally:
        await pool.close()
        await pg_proxy.stop()
        await grpc_proxy.stop()


async def test_total_and_statistics_under_verified_false(
    aiohttp_client: Any, migrated_db: Callable[[str], str]
) -> None:
    """`false` is a filter value, not "no filter": meta.total and the statistics count the
    unverified users only, `true` the others (a slip reading false as absent passes every
    test that looks at the rows of an all-verified seed)."""
    dsn = migrated_db("users")
    for n, verified in enumerate((True, True, False)):
        await pg.execute(
            dsn,
            "INSERT INTO users (email, password_hash, first_name, last_name, phone_number,"
            " role, verified, age, salary) VALUES ($1, 'x', 'Una', 'Walker', '+1 555 0100',"
            " 'CUSTOMER', $2, $3, $4)",
            f"{uuid.uuid4().hex}@example.com",
            verified,
            20 + 10 * n,
            Decimal(50000 + 10000 * n),
        )

    async def factory(_: UsersSettings) -> AsyncIterator[Any]:
        yield NoPoints()

    client = await aiohttp_client(create_app(settings(dsn, ""), points=factory))
    unverified = await listing(client, "verified=false")
    assert [u["verified"] for u in unverified["data"]] == [False]
    assert unverified["meta"]["total"] == 1
    assert unverified["meta"]["statistics"] == {
        "count": 1,
        "age": {"min": 40, "max": 40, "avg": "40.00"},
        "salary": {"min": "70000.00", "max": "70000.00", "avg": "70000.00"},
    }
    verified = await listing(client, "verified=true")
    assert verified["meta"]["total"] == 2
    assert verified["meta"]["statistics"] == {
        "count": 2,
        "age": {"min": 20, "max": 30, "avg": "25.00"},
        "salary": {"min": "50000.00", "max": "60000.00", "avg": "55000.00"},
    }


class NoPoints:
    async def get_user_list_points(self, user_ids: list[str]) -> dict[str, int]:
        return dict.fromkeys(user_ids, 0)

    async def get_points_version(self) -> int:
        return 1  # the points never change
