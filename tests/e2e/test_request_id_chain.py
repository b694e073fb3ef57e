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
from tests.e2e.gateway_stack import Gateway, wait_until
from tests.e2e.service_process import Service
from tests.integration.auth_support import KEYS
from tests.servers import free_port
from tools import seed


@pytest.fixture(scope="module")
async def chain(
    migrated_db: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Gateway, Service, Service]]:
    tmp = tmp_path_factory.mktemp("chain")
    users_dsn, points_dsn = migrated_db("users"), migrated_db("points")
    seed.seed_users(users_dsn)
    seed.seed_points(points_dsn)
    grpc_port = free_port()
    common = {"WORKERS": "1", "REDIS_URL": "", "RATE_LIMIT_IP_RATE": "1000"}
    points = Service(
        {**common, "POINTS_DATABASE_URL": points_dsn, "POINTS_PORT": str(free_port()),
         "POINTS_GRPC_PORT": str(grpc_port)},
        tmp / "points.log",
        name="points",
    )  # fmt: skip
    users = Service(
        {**common, "USERS_DATABASE_URL": users_dsn, "USERS_PORT": str(free_port()),
         "POINTS_GRPC_ADDR": f"127.0.0.1:{grpc_port}", "JWT_PUBLIC_KEY": KEYS[1]},
        tmp / "users.log",
        name="users",
    )  # fmt: skip
    docs = tmp / "docs"
    docs.mkdir()
    gateway = Gateway(tmp, {"users": [f"127.0.0.1:{users.port}"]}, docs)
    try:
        await points.wait_healthy()
        await users.wait_healthy()
        await gateway.start()
        yield gateway, users, points
    finally:
        gateway.stop()
        users.stop()
        points.stop()


def lines_with(path: Path, request_id: str) -> list[dict[str, object]]:
    text = path.read_text() if path.exists() else ""
    return [json.loads(x) for x in text.splitlines() if request_id in x and x.startswith("{")]


async def test_one_request_id_in_nginx_users_and_points_logs(
    chain: tuple[Gateway, Service, Service],
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
