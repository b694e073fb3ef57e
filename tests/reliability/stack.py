"""The services of the reliability suite as real processes (python -m services.<svc>),
with the settings every test shares: test keys, generous rate limits, one worker."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from tests.integration.auth_support import KEYS, TEST_TOKEN_TTL
from tests.servers import RUN_ID, db_bounds_env
from tools.local.ports import free_port
from tools.local.service_process import ServiceProcess

PASSWORD = "reliability-pass-7Qz!"  # what the run's users log in with: must never be logged
# every service of the suite: a pool this small is what "3 x the pool" of test_capacity.py
# goes past; a request that cannot get a connection within ACQUIRE_TIMEOUT answers 503
POOL_MAX = "4"
ACQUIRE_TIMEOUT = 2.0
ENCRYPTION_KEY = base64.b64encode(b"r" * 32).decode()

# this run's own rate-limit keys: runs sharing one Redis never meet in a bucket
RATE_LIMIT_PREFIX = f"fixup:test:{RUN_ID}:rl:"
OPEN_LIMITS = {
    "RATE_LIMIT_IP_RATE": "100000",
    "RATE_LIMIT_IP_BURST": "100000",
    "RATE_LIMIT_USER_RATE": "100000",
    "RATE_LIMIT_USER_BURST": "100000",
}


def common_env(name: str, dsn: str, **extra: str) -> dict[str, str]:
    return {
        f"{name.upper()}_DATABASE_URL": dsn,
        f"{name.upper()}_PORT": str(free_port()),
        "JWT_PUBLIC_KEY": KEYS[1],
        "WORKERS": "1",
        "REDIS_URL": "",
        "DB_POOL_MIN": "1",
        "LOG_LEVEL": "INFO",
        "CORS_ALLOW_ORIGINS": "https://app.fixup.test",
        "RATE_LIMIT_PREFIX": RATE_LIMIT_PREFIX,
        **OPEN_LIMITS,
        **db_bounds_env(),
        **extra,
    }


def users_env(dsn: str, points_addr: str = "", **extra: str) -> dict[str, str]:
    return common_env(
        "users",
        dsn,
        JWT_PRIVATE_KEY=KEYS[0],
        ENCRYPTION_KEY=ENCRYPTION_KEY,
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_COST="8",
        ARGON2_PARALLELISM="1",
        POINTS_GRPC_ADDR=points_addr,
        COOKIE_SECURE="false",
        **{  # like OPEN_LIMITS: the sign-in budgets; tests that want a limit set their own
            "REGISTER_RATE": "100000",
            "REGISTER_BURST": "100000",
            "LOGIN_RATE": "100000",
            "LOGIN_BURST": "100000",
            **extra,
        },
    )


def points_env(dsn: str, **extra: str) -> dict[str, str]:
    return common_env("points", dsn, POINTS_GRPC_PORT=str(free_port()), **extra)


async def start(name: str, env: dict[str, str], log: Path) -> ServiceProcess:
    service = ServiceProcess(env, log, name=name)
    try:
        await service.wait_healthy()
    except BaseException:
        service.stop()
        raise
    return service


def token(role: Role = Role.ADMIN, user_id: uuid.UUID | None = None, **kwargs: Any) -> str:
    value, _ = TokenSigner(KEYS[0], kwargs.pop("ttl", TEST_TOKEN_TTL), **kwargs).issue(
        user_id or uuid.uuid4(), role, True
    )
    return value


def bearer(role: Role = Role.ADMIN, user_id: uuid.UUID | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, user_id)}"}


async def spec_of(service: ServiceProcess) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{service.url}/v1/openapi.json") as r:
        assert r.status == 200, await r.text()
        document: dict[str, Any] = await r.json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) for every operation of the document."""
    return [
        (method.upper(), path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def needs_token(op: dict[str, Any]) -> bool:
    return any("bearer" in requirement for requirement in op.get("security", []))
