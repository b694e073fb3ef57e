"""One clock for tokens (ADR 0010): a real users process under libfaketime (Debian
`faketime`) 90 s ahead of, then 90 s behind, the real orders and chat processes and
PostgreSQL. Logins, refreshes, picture URLs and revocations keep working across the
services, because users signs `iat` and writes revocations with the database's clock;
and a password change voids exactly the tokens issued before it: the old token is 401
at every service within the cache's bound, one from a login right after is 200 at once.
Each offset starts users once (about 10 s each on a loaded machine)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests import pg
from tests.integration.chat_support import eventually
from tests.integration.test_users_pictures import CTYPE, PNG, multipart, part
from tests.integration.users_support import PASSWORD, make_user
from tests.servers import Servers
from tools import keys
from tools.local.ports import free_port
from tools.local.service_process import ServiceProcess
from tools.time_scale import scaled

OFFSETS = ("+90s", "-90s")
STARTUP = scaled(60.0)  # a process starting on a loaded machine
CACHE_TTL = 1.0  # REVOCATION_CACHE_TTL (the default)
MARGIN = 3.0  # a loaded machine's scheduling, on top of the documented bound
NEW_PASSWORD = "a brand new passphrase"


@dataclass
class Skewed:
    users: str
    orders: str
    chat: str
    users_dsn: str


@pytest.fixture(scope="module")
async def others(
    migrated_db: Callable[[str], str],
    tmp_path_factory: pytest.TempPathFactory,
    servers: Servers,
    redis_prefix: str,
) -> AsyncIterator[tuple[dict[str, str], Path]]:
    """orders and chat on the real clock; the environment users gets too."""
    if shutil.which("faketime") is None:
        pytest.fail("faketime is missing: apt-get install -y faketime", pytrace=False)
    tmp = tmp_path_factory.mktemp("clock_skew")
    keys.write_keys(tmp / "keys")
    ports = {name: free_port() for name in ("users", "orders", "chat")}
    env = {
        "WORKERS": "1",
        "DB_POOL_MIN": "1",
        "REDIS_URL": servers.redis_url,
        "RATE_LIMIT_PREFIX": f"{redis_prefix}skew:{uuid.uuid4().hex[:8]}:rl:",
        "REVOCATION_PREFIX": f"{redis_prefix}skew:{uuid.uuid4().hex[:8]}:revoked:",
        "REVOCATION_RECORD_URL": f"http://127.0.0.1:{ports['users']}",
        "JWT_PUBLIC_KEY_FILE": str(tmp / "keys" / keys.PUBLIC_NAME),
        "JWT_PRIVATE_KEY_FILE": str(tmp / "keys" / keys.PRIVATE_NAME),
        "POINTS_GRPC_ADDR": "",
        "STORAGE_DIR": str(tmp / "storage"),
        "CATALOG_URL": f"http://127.0.0.1:{free_port()}",  # not needed here
        **{f"{n.upper()}_PORT": str(p) for n, p in ports.items()},
        **{f"{n.upper()}_URL": f"http://127.0.0.1:{p}" for n, p in ports.items()},
        **{f"{n.upper()}_DATABASE_URL": migrated_db(n) for n in ports},
    }
    started = [ServiceProcess(env, tmp / f"{n}.log", name=n) for n in ("orders", "chat")]
    try:
        for service in started:
            await service.wait_healthy(STARTUP)
        yield env, tmp
    finally:
        for service in started:
            service.stop()


@pytest.fixture(params=OFFSETS)
async def skewed(
    request: pytest.FixtureRequest, others: tuple[dict[str, str], Path]
) -> AsyncIterator[Skewed]:
    env, tmp = others
    offset = request.param
    # libfaketime: this process's wall clock `offset` from the real one (its monotonic
    # clock untouched: asyncio's timers stay real)
    users = ServiceProcess(
        env | {"FAKETIME_DONT_FAKE_MONOTONIC": "1"},
        tmp / f"users{offset}.log",
        name="users",
        wrapper=("faketime", "-f", offset),
    )
    try:
        await users.wait_healthy(STARTUP)
        yield Skewed(users.url, env["ORDERS_URL"], env["CHAT_URL"], env["USERS_DATABASE_URL"])
    finally:
        users.stop()


async def get(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> int:
    async with http.get(url, headers=headers) as resp:
        return resp.status


async def statuses(http: aiohttp.ClientSession, stack: Skewed, access: str) -> set[int]:
    """What users, orders and chat answer the access token (an authenticated read each)."""
    headers = {"Authorization": f"Bearer {access}"}
    return {
        await get(http, f"{stack.users}/v1/users/me", headers),
        await get(http, f"{stack.orders}/v1/orders", headers),
        await get(http, f"{stack.chat}/v1/conversations", headers),
    }


async def login(http: aiohttp.ClientSession, stack: Skewed, email: str, password: str) -> Any:
    body = {"email": email, "password": password}
    async with http.post(f"{stack.users}/v1/auth/login", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["data"]


async def test_a_users_service_90_s_off_keeps_tokens_and_revocations_working(
    skewed: Skewed,
) -> None:
    user_id = await make_user(skewed.users_dsn)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{skewed.users}/health") as resp:
            assert resp.status == 200
        email = await pg.fetchval(
            skewed.users_dsn, "SELECT email FROM users WHERE id = $1", user_id
        )
        first = await login(http, skewed, email, PASSWORD)
        assert await statuses(http, skewed, first["access_token"]) == {200}
        # a refresh: the new access token works everywhere too
        body = {"refresh_token": first["refresh_token"]}
        async with http.post(f"{skewed.users}/v1/auth/refresh", json=body) as resp:
            assert resp.status == 200, await resp.text()
            refreshed = (await resp.json())["data"]
        assert await statuses(http, skewed, refreshed["access_token"]) == {200}
        # a picture URL users signs is served by users
        headers = {"Authorization": f"Bearer {refreshed['access_token']}"}
        upload = multipart(part("image", PNG))
        async with http.put(
            f"{skewed.users}/v1/users/me/picture",
            data=upload,
            headers=headers | {"Content-Type": CTYPE},
        ) as resp:
            assert resp.status == 204, await resp.text()
        async with http.get(f"{skewed.users}/v1/users/me", headers=headers) as resp:
            url = (await resp.json())["data"]["picture_url"]
        async with http.get(f"{skewed.users}/v1/pictures/{url.split('/v1/pictures/')[1]}") as resp:
            assert resp.status == 200, await resp.text()
        # a password change voids exactly the tokens issued before it
        change = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
        async with http.post(
            f"{skewed.users}/v1/users/me/password", json=change, headers=headers
        ) as resp:
            assert resp.status == 204, await resp.text()
        after = await login(http, skewed, email, NEW_PASSWORD)
        assert await statuses(http, skewed, after["access_token"]) == {200}

        async def old_refused() -> bool:
            return await statuses(http, skewed, refreshed["access_token"]) == {401}

        await eventually(old_refused, "the old token refused everywhere", CACHE_TTL + MARGIN)
        assert await statuses(http, skewed, after["access_token"]) == {200}
