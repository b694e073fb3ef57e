"""One request id crosses NGINX -> users -> points and shows up in each one's log."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from tests.e2e.gateway_stack import Gateway, users_and_points_behind_nginx, wait_until
from tests.integration.auth_support import KEYS
from tools.local.service_process import ServiceProcess


@pytest.fixture(scope="module")
async def chain(
    migrated_db: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Gateway, ServiceProcess, ServiceProcess]]:
    tmp = tmp_path_factory.mktemp("chain")
    users_dsn, points_dsn = migrated_db("users"), migrated_db("points")
    async with users_and_points_behind_nginx(users_dsn, points_dsn, tmp) as chain:
        yield chain


def lines_with(path: Path, request_id: str) -> list[dict[str, object]]:
    text = path.read_text() if path.exists() else ""
    return [json.loads(x) for x in text.splitlines() if request_id in x and x.startswith("{")]


async def test_one_request_id_in_nginx_users_and_points_logs(
    chain: tuple[Gateway, ServiceProcess, ServiceProcess],
) -> None:
    gateway, users, points = chain
    rid = f"chain-{uuid.uuid4().hex}"
    token = TokenSigner(KEYS[0], 600).issue(uuid.uuid4(), Role.MODERATOR, True)[0]
    headers = {"X-Request-ID": rid, "Authorization": f"Bearer {token}"}
    url = f"{gateway.url}/api/users/v1/users?role=CUSTOMER"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        assert resp.headers["X-Request-ID"] == rid
    assert "degraded" not in body["meta"]
    assert {u["last_name"]: u["points"] for u in body["data"]}["Costanza"] == 93

    async def everywhere() -> bool:
        return all(lines_with(path, rid) for path in (gateway.access_log, users.log, points.log))

    await wait_until(everywhere, f"{rid} in the NGINX, users and points logs")
    (edge,) = lines_with(gateway.access_log, rid)
    assert (edge["service"], edge["status"]) == ("users", 200)
    assert any(line.get("route") == "/v1/users" for line in lines_with(users.log, rid))
    grpc_lines = lines_with(points.log, rid)
    assert any(line.get("method") == "/point.PointServer/GetUserListPoints" for line in grpc_lines)
