"""schemathesis against the running orders service (catalog and users unreachable, no
relay): for a fixed number of generated
requests per operation, no 5xx and no response that violates the OpenAPI document."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from tests.e2e.service_process import Service
from tests.integration.auth_support import KEYS
from tests.servers import free_port

EXAMPLES = 25  # per operation: bounded time, fixed count


@pytest.fixture(scope="module")
async def running(
    migrated_db: Callable[[str], str], tmp_path_factory: Any
) -> AsyncIterator[Service]:
    env = {
        "ORDERS_DATABASE_URL": migrated_db("orders"),
        "ORDERS_PORT": str(free_port()),
        "ORDERS_CATALOG_URL": f"http://127.0.0.1:{free_port()}",
        "ORDERS_USERS_URL": f"http://127.0.0.1:{free_port()}",
        "ORDERS_POINTS_GRPC_ADDR": "",
        "JWT_PUBLIC_KEY": KEYS[1],
        "RATE_LIMIT_IP_RATE": "100000",
        "RATE_LIMIT_IP_BURST": "100000",
        "RATE_LIMIT_USER_RATE": "100000",
        "RATE_LIMIT_USER_BURST": "100000",
        "WORKERS": "1",
        "REDIS_URL": "",
    }
    service = Service(env, Path(tmp_path_factory.mktemp("schemathesis")) / "svc.log", "orders")
    await service.wait_healthy()
    yield service
    service.stop()


async def test_no_5xx_and_every_response_matches_the_spec(running: Service) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{running.url}/v1/openapi.json") as r:
        document = await r.json()
    schema = schemathesis.openapi.from_dict(document)
    admin = TokenSigner(KEYS[0], 3600).issue(uuid.uuid4(), Role.ADMIN, True)[0]
    headers = {"Authorization": f"Bearer {admin}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 17
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call_and_validate(base_url=running.url, headers=headers)
            assert response.status_code < 500, response.text

        check()
