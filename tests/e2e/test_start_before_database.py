"""A service started while its database (and Redis) is away waits and serves once it is
back (lib/db/waiting.py): the process never exits, /health answers 200 (alive) and /ready
503 while it waits, each connection attempt is logged, and the first answer after the
database returns is served. One service of each kind: PostgreSQL over HTTP (departments;
users, whose start-up reads the database's clock), MariaDB over gRPC (points), and one
that needs Redis too (chat, Redis away as long as PostgreSQL).

The database is away behind a loopback proxy on a port of its own: refusing (nothing
listens), or black-holed (the proxy accepts and holds every answer, so each attempt waits
DB_CONNECT_TIMEOUT). The outage lasts 3 s in `make test`, 30 s in `make test-reliability`
(RELIABILITY_FULL=1), or START_OUTAGE seconds."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from lib.grpc.client import ChannelPool
from lib.pb.point import PointReply, PointRequest
from tests.e2e.gateway_stack import departments_env
from tests.proxy import TcpProxy, through
from tests.servers import Servers
from tools import keys
from tools.local.ports import free_port
from tools.local.service_process import PROCESS_MARGIN, ServiceProcess

CONNECT_TIMEOUT = 1.0  # DB_CONNECT_TIMEOUT: a black-holed attempt gives up after this
MAX_DELAY = 3.0  # connect()'s longest pause between two attempts (lib/db/pool.py)


def outage() -> float:
    full = os.environ.get("RELIABILITY_FULL") == "1"
    return float(os.environ.get("START_OUTAGE") or (30 if full else 3))


@dataclass
class Case:
    name: str
    engine_port: int  # the real server's port the proxy forwards to
    black_hole: bool
    with_redis: bool = False


CASES = [
    Case("departments", 5432, black_hole=False),
    Case("users", 5432, black_hole=True),
    Case("points", 3306, black_hole=False),
    Case("chat", 5432, black_hole=True, with_redis=True),
]


async def status(http: aiohttp.ClientSession, url: str) -> int:
    try:
        async with http.get(url) as resp:
            await resp.read()
            return resp.status
    except aiohttp.ClientError:
        return 0


async def until(check: Callable[[], object], what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {seconds:g} s: {what}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_a_service_started_while_its_database_is_away_serves_once_it_is_back(
    case: Case,
    migrated_db: Callable[[str], str],
    servers: Servers,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    dsn = migrated_db(case.name)
    parts = urlsplit(dsn)
    database = TcpProxy(parts.hostname or "127.0.0.1", parts.port or case.engine_port)
    redis_parts = urlsplit(servers.redis_url)
    redis = TcpProxy(redis_parts.hostname or "127.0.0.1", redis_parts.port or 6379)
    db_port, redis_port = free_port(), free_port()
    if case.black_hole:  # accepts, and every answer waits at the proxy
        await database.start(db_port)
        database.hold()
    database.port = db_port
    redis.port = redis_port
    redis_url = servers.redis_url.replace(f":{redis_parts.port}", f":{redis_port}", 1)
    keys.write_keys(tmp_path / "keys")
    http_port, grpc_port = free_port(), free_port()
    env = {
        f"{case.name.upper()}_DATABASE_URL": through(dsn, database),
        f"{case.name.upper()}_PORT": str(http_port),
        "POINTS_GRPC_PORT": str(grpc_port),
        "WORKERS": "1",
        "DB_POOL_MIN": "1",
        "DB_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "REDIS_URL": redis_url if case.with_redis else "",
        "RATE_LIMIT_PREFIX": f"{redis_prefix}start:{uuid.uuid4().hex[:8]}:rl:",
        "REVOCATION_PREFIX": f"{redis_prefix}start:{uuid.uuid4().hex[:8]}:revoked:",
        "REVOCATION_RECORD_URL": "http://127.0.0.1:9",  # the discard port: not needed here
        "JWT_PUBLIC_KEY_FILE": str(tmp_path / "keys" / keys.PUBLIC_NAME),
        "JWT_PRIVATE_KEY_FILE": str(tmp_path / "keys" / keys.PRIVATE_NAME),
        "POINTS_GRPC_ADDR": "",
        "STORAGE_DIR": str(tmp_path / "storage"),
        "ORDERS_URL": f"http://127.0.0.1:{free_port()}",
        "CATALOG_URL": f"http://127.0.0.1:{free_port()}",
        "DEPARTMENTS_URL": f"http://127.0.0.1:{free_port()}",
    }
    log = tmp_path / f"{case.name}.log"
    service = ServiceProcess(env, log, name=case.name)
    try:
        async with aiohttp.ClientSession() as http:
            began = time.monotonic()
            await service.wait_healthy()  # alive and listening, the database away
            assert await status(http, f"{service.url}/ready") == 503
            # it keeps trying for the whole outage, each attempt logged, and never exits
            await until(
                lambda: log.read_text().count("db_connect_retry") >= 2,
                "two logged connection attempts",
                2 * (CONNECT_TIMEOUT + MAX_DELAY) + PROCESS_MARGIN,
            )
            await asyncio.sleep(max(0.0, outage() - (time.monotonic() - began)))
            assert service.proc.poll() is None, log.read_text()
            assert await status(http, f"{service.url}/ready") == 503
            assert await status(http, f"{service.url}/health") == 200
            attempts = log.read_text().count("db_connect_retry")

            back = time.monotonic()  # the database (and Redis) come back
            if case.black_hole:
                database.release()
            else:
                await database.start(db_port)
            if case.with_redis:
                await redis.start(redis_port)

            async def ready() -> bool:
                return await status(http, f"{service.url}/ready") == 200

            # the next attempt (after at most MAX_DELAY, or a held one's timeout) connects
            await until(ready, "/ready 200", CONNECT_TIMEOUT + MAX_DELAY + PROCESS_MARGIN)
            waited = time.monotonic() - back
            if case.name == "points":
                pool = ChannelPool(f"127.0.0.1:{grpc_port}", 1)
                get = pool.unary("/point.PointServer/GetUserPoints", PointReply.parse)
                reply = await get(PointRequest(user_id=str(uuid.uuid4())), timeout=5)
                assert reply.user_point == "0"
                await pool.close()
            elif case.name == "departments":
                assert await status(http, f"{service.url}/v1/departments") == 200
            if case.with_redis:
                async with http.get(f"{service.url}/ready") as resp:
                    assert (await resp.json())["checks"] == {"database": "ok", "redis": "ok"}
            print(
                f"{case.name}: away {back - began:.1f} s, {attempts} attempts logged, "
                f"/ready 200 {waited:.1f} s after the database came back"
            )
            assert "Traceback" not in log.read_text()
    finally:
        service.stop()
        await database.stop()
        await redis.stop()


async def test_a_bounded_wait_stops_the_process_saying_why(
    migrated_db: Callable[[str], str], tmp_path: Path
) -> None:
    wait = 2.0  # DB_CONNECT_WAIT
    dsn = migrated_db("departments")
    parts = urlsplit(dsn)
    database = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    database.port = free_port()  # nothing listens: refused for good
    env = departments_env(
        through(dsn, database),
        DB_CONNECT_WAIT=str(wait),
        DB_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
    )
    service = ServiceProcess(env, tmp_path / "departments.log")
    try:
        await service.wait_healthy()
        code = await asyncio.to_thread(
            service.proc.wait, wait + CONNECT_TIMEOUT + MAX_DELAY + PROCESS_MARGIN
        )
        text = service.log.read_text()
        assert code == 0, text  # a graceful stop (SIGTERM), not a crash
        assert "db_connect_gave_up" in text
        assert "Traceback" not in text
    finally:
        service.stop()


async def test_a_database_that_freezes_under_a_serving_process_answers_503_in_its_bound(
    migrated_db: Callable[[str], str], tmp_path: Path
) -> None:
    """A primary that freezes or is cut off answers nothing and closes nothing (the proxy
    holds every answer): a request ends in 503 + Retry-After once DB_COMMAND_TIMEOUT has
    passed, never hangs, and its connection is dropped; once the database answers again
    the process serves on a new one."""
    command_timeout = 1.0  # DB_COMMAND_TIMEOUT
    dsn = migrated_db("departments")
    parts = urlsplit(dsn)
    database = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await database.start(free_port())
    env = departments_env(through(dsn, database), DB_COMMAND_TIMEOUT=str(command_timeout))
    service = ServiceProcess(env, tmp_path / "departments.log")
    listing = f"{service.url}/v1/departments"
    try:
        async with aiohttp.ClientSession() as http:
            await service.wait_healthy()
            assert await status(http, listing) == 200
            database.hold()  # frozen: every answer waits at the proxy
            began = time.monotonic()
            async with http.get(listing) as resp:
                await resp.read()
                answer, retry = resp.status, resp.headers.get("Retry-After")
            took = time.monotonic() - began
            assert (answer, retry is not None) == (503, True), service.log.read_text()[-2000:]
            assert command_timeout <= took < command_timeout + PROCESS_MARGIN, took
            database.release()

            async def served() -> bool:
                return await status(http, listing) == 200

            await until(served, "a 200 once the database answers", PROCESS_MARGIN)
            assert "Traceback" not in service.log.read_text()
    finally:
        service.stop()
        await database.stop()
