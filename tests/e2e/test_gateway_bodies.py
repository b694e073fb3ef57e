"""Bodies aiohttp's own parsers refuse are a 400 problem through NGINX, never a 500
(issue 54): the multipart part name with control characters the stateful fuzz found."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from tests.e2e.gateway_stack import Gateway, users_and_points_behind_nginx
from tests.integration.auth_support import KEYS
from tests.integration.test_users_picture_edges import EDGES
from tests.integration.test_users_pictures import CTYPE
from tools.local.service_process import ServiceProcess


@pytest.fixture(scope="module")
async def chain(
    migrated_db: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Gateway, ServiceProcess, ServiceProcess]]:
    tmp = tmp_path_factory.mktemp("bodies")
    users_dsn, points_dsn = migrated_db("users"), migrated_db("points")
    async with users_and_points_behind_nginx(users_dsn, points_dsn, tmp) as chain:
        yield chain


@pytest.mark.parametrize(
    "edge", ["control characters in the name", "a name that is not UTF-8", "an empty body"]
)
async def test_a_malformed_multipart_part_is_a_400_through_nginx(
    chain: tuple[Gateway, ServiceProcess, ServiceProcess], edge: str
) -> None:
    gateway, users, _ = chain
    body, _, status, detail = EDGES[edge]
    token = TokenSigner(KEYS[0], 600).issue(uuid.uuid4(), Role.ADMIN, True)[0]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": CTYPE}
    url = f"{gateway.url}/api/users/v1/users/{uuid.uuid4()}/picture"
    async with aiohttp.ClientSession() as http, http.put(url, data=body, headers=headers) as resp:
        problem = await resp.json(content_type=None)
        assert (resp.status, resp.content_type) == (status, "application/problem+json"), problem
    assert problem["detail"] == detail
    assert "unhandled_error" not in users.log.read_text()
