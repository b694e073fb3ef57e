"""The users list's stamp (services/users/list_stamp.py, ADR 0056) on real PostgreSQL and
the points service on gRPC over MariaDB, each test on databases of its own: a write to the
users or to their points between two reads shows at once (the kept page is not answered,
the ETag moves; it also names the window the page's picture URLs were signed in), and an
If-None-Match of the old tag gets the new page; a degraded page (points down) has no ETag
and is never kept, and its request asks points once (one deadline, not two)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
from prometheus_client import REGISTRY

from lib.auth.principal import Role
from lib.errors import ServiceUnavailable
from lib.http.conditional import PAGE_CACHE
from lib.http.keys import SETTINGS
from services.users.app import create_app
from services.users.settings import UsersSettings
from tests.integration.points_support import running_points
from tests.integration.test_users_list import MODERATOR, settings
from tests.integration.users_support import make_user


def hits(service: str) -> float:
    return REGISTRY.get_sample_value("page_cache_hits_total", {"service": service}) or 0.0


async def read(client: Any, path: str, **headers: str) -> tuple[int, str | None, Any]:
    resp = await client.get(path, headers={**MODERATOR, **headers})
    body = await resp.json() if resp.status == 200 else None
    return resp.status, resp.headers.get("ETag"), body


async def test_a_write_to_the_users_or_their_points_shows_at_once(
    aiohttp_client: Any, migrated_db: Callable[[str], str]
) -> None:
    users_dsn, points_dsn = migrated_db("users"), migrated_db("points")
    provider = await make_user(users_dsn, Role.PROVIDER)
    service = f"users-pages-{uuid.uuid4().hex[:8]}"
    async with running_points(points_dsn) as points:
        app = create_app(settings(users_dsn, points.target, service=service))
        client = await aiohttp_client(app)
        path = "/v1/users?role=PROVIDER&limit=10"
        before = int(time.time())
        status, tag, first = await read(client, path)
        assert status == 200, first
        assert tag is not None
        # the window its picture URLs are signed in: half their lifetime (a kept page's
        # URLs have at least half of theirs left)
        window = app[SETTINGS].storage_url_ttl // 2
        signed_in = int(tag.strip('"').split(".")[2], 16)
        assert signed_in in range(before // window, int(time.time()) // window + 1)
        assert [u["points"] for u in first["data"]] == [0]
        assert await read(client, path) == (status, tag, first)
        assert hits(service) == 1  # the second read: the kept page

        await points.add(str(provider), 5)  # through points: its stamp moves
        status, moved, body = await read(client, path)
        assert [u["points"] for u in body["data"]] == [5]
        assert moved != tag
        assert hits(service) == 1
        assert (await read(client, path, **{"If-None-Match": tag}))[2] == body
        assert (await read(client, path, **{"If-None-Match": moved}))[0] == 304

        conn = await asyncpg.connect(users_dsn)  # a write to the users table
        try:
            await conn.execute("UPDATE users SET first_name = 'Grace' WHERE id = $1", provider)
        finally:
            await conn.close()
        status, renamed, body = await read(client, path)
        assert [u["first_name"] for u in body["data"]] == ["Grace"]
        assert renamed not in (tag, moved)
        assert hits(service) == 2  # the If-None-Match of the old tag above: a kept page
        assert len(app[PAGE_CACHE]) == 1


async def test_a_degraded_page_is_never_kept_and_asks_points_once(
    aiohttp_client: Any, migrated_db: Callable[[str], str]
) -> None:
    users_dsn = migrated_db("users")
    await make_user(users_dsn, Role.PROVIDER)
    service = f"users-pages-{uuid.uuid4().hex[:8]}"
    asked: list[str] = []

    class Down:  # what PointsClient raises when points times out
        async def get_points_version(self) -> int:
            asked.append("version")
            raise ServiceUnavailable("points timed out")

        async def get_user_list_points(self, user_ids: list[str]) -> dict[str, int]:
            asked.append("list")
            raise ServiceUnavailable("points timed out")

    async def factory(_: UsersSettings) -> AsyncIterator[Any]:
        yield Down()

    app = create_app(settings(users_dsn, "", service=service), points=factory)
    client = await aiohttp_client(app)
    for _ in range(2):
        status, tag, body = await read(client, "/v1/users?role=PROVIDER")
        assert status == 200, body
        assert (body["meta"]["degraded"], tag) == (["points"], None)
        assert [u["points"] for u in body["data"]] == [None]
        assert body["meta"]["statistics"]["count"] == 1
    assert asked == ["version", "version"]  # one deadline per request, not two
    assert len(app[PAGE_CACHE]) == 0
    assert hits(service) == 0
