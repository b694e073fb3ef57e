"""The order story's services as real processes behind real NGINX: points (gRPC over
MariaDB), users, catalog and orders (its outbox relay delivering to points), and chat
when its database is given, with the keys `make keys` writes. Used by
tests/e2e/test_orders_story.py and bench/orders_flow.py.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from lib.auth.passwords import make_hasher
from tests import pg
from tests.e2e.gateway_stack import Gateway
from tools import keys
from tools.local.ports import free_port
from tools.local.service_process import ServiceProcess


@dataclass(frozen=True)
class Dsns:
    users: str
    catalog: str
    orders: str
    points: str
    chat: str = ""  # none: no chat process


@dataclass
class StoryStack:
    gateway: Gateway
    services: dict[str, ServiceProcess]
    dsns: Dsns
    key_dir: Path
    points_per_job: int

    def api(self, service: str, *, direct: bool = False) -> str:
        """The base URL of `service`: through NGINX, or (`direct`) its own port."""
        if direct:
            return self.services[service].url
        return f"{self.gateway.url}/api/{service}"

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n{s.log.read_text()}"
            for name, s in self.services.items()
            if s.log.exists()
        )


@contextlib.asynccontextmanager
async def running_story_stack(
    tmp: Path,
    dsns: Dsns,
    *,
    users_env: dict[str, str] | None = None,
    points_per_job: int = 10,
    pool_max: int = 10,
) -> AsyncIterator[StoryStack]:
    """Every process started, healthy, and NGINX in front; all stopped on exit."""
    key_dir = tmp / "keys"
    keys.write_keys(key_dir)  # what `make keys` writes, quietly
    keys.write_encryption_key(key_dir)
    common = {
        "WORKERS": "1", "REDIS_URL": "", "DB_POOL_MIN": "1", "DB_POOL_MAX": str(pool_max),
        "LOG_LEVEL": "WARNING", "JWT_PUBLIC_KEY": "",
        "JWT_PUBLIC_KEY_FILE": str(key_dir / keys.PUBLIC_NAME),
        "RATE_LIMIT_IP_RATE": "1000000", "RATE_LIMIT_IP_BURST": "1000000",
        "RATE_LIMIT_USER_RATE": "1000000", "RATE_LIMIT_USER_BURST": "1000000",
    }  # fmt: skip
    names = ("points", "users", "catalog", "orders") + (("chat",) if dsns.chat else ())
    ports = {name: free_port() for name in names}
    grpc_port = free_port()
    docs = tmp / "docs"
    docs.mkdir(exist_ok=True)
    gateway = Gateway(
        tmp,
        {name: [f"127.0.0.1:{ports[name]}"] for name in names if name != "points"},
        docs,
    )
    envs: dict[str, dict[str, str]] = {
        "points": {
            "POINTS_DATABASE_URL": dsns.points,
            "POINTS_GRPC_PORT": str(grpc_port),
        },
        "users": {
            "USERS_DATABASE_URL": dsns.users,
            "PUBLIC_BASE_URL": gateway.url,
            "JWT_PRIVATE_KEY": "",
            "ENCRYPTION_KEY": "",
            "JWT_PRIVATE_KEY_FILE": str(key_dir / keys.PRIVATE_NAME),
            "ENCRYPTION_KEY_FILE": str(key_dir / keys.ENCRYPTION_NAME),
            "DEPARTMENTS_URL": f"http://127.0.0.1:{free_port()}",  # not part of the story
            "POINTS_GRPC_ADDR": f"127.0.0.1:{grpc_port}",
            "LOGIN_RATE": "1000000",
            "LOGIN_BURST": "1000000",
            "MAIL_RATE": "1000000",
            "MAIL_BURST": "1000000",
            "REGISTER_RATE": "1000000",
            "REGISTER_BURST": "1000000",
            **(users_env or {}),
        },
        "catalog": {"CATALOG_DATABASE_URL": dsns.catalog},
        "orders": {
            "ORDERS_DATABASE_URL": dsns.orders,
            "CATALOG_URL": f"http://127.0.0.1:{ports['catalog']}",
            "USERS_URL": f"http://127.0.0.1:{ports['users']}",
            "POINTS_GRPC_ADDR": f"127.0.0.1:{grpc_port}",
            "POINTS_PER_JOB": str(points_per_job),
        },
    }
    if dsns.chat:  # in-process pub/sub (one replica); orders says who takes part
        envs["chat"] = {
            "CHAT_DATABASE_URL": dsns.chat,
            "ORDERS_URL": f"http://127.0.0.1:{ports['orders']}",
        }
    services: dict[str, ServiceProcess] = {}
    try:
        for name, env in envs.items():
            full = {**common, f"{name.upper()}_PORT": str(ports[name]), **env}
            services[name] = ServiceProcess(full, tmp / f"{name}.log", name=name)
        for service in services.values():
            await service.wait_healthy()
        await gateway.start()
        yield StoryStack(gateway, services, dsns, key_dir, points_per_job)
    finally:
        gateway.stop()
        for service in services.values():
            service.stop()


async def seeded_admin_email(users_dsn: str, password: str) -> str:
    """An ADMIN row as `make seed` writes one (there is no way to register an ADMIN)."""
    email = f"admin-{uuid.uuid4().hex[:8]}@fixup.test"
    await pg.execute(
        users_dsn,
        "INSERT INTO users (id, email, password_hash, first_name, last_name, phone_number,"
        " role, verified) VALUES ($1, $2, $3, 'Fixup', 'Admin', '+1 555 0100', 'ADMIN', true)",
        uuid.uuid4(), email, make_hasher(1, 8, 1).hash(password),
    )  # fmt: skip
    return email


@dataclass
class Session:
    """A logged-in account: its id, bearer header and email."""

    id: str
    headers: dict[str, str] = field(default_factory=dict)
    email: str = ""


async def call(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[aiohttp.ClientResponse, Any]:
    async with http.request(method, url, **kwargs) as resp:
        body = await resp.json() if resp.content_type.endswith("json") else await resp.text()
        return resp, body


async def login(http: aiohttp.ClientSession, users_api: str, email: str, password: str) -> Session:
    resp, body = await call(
        http, "POST", f"{users_api}/v1/auth/login", json={"email": email, "password": password}
    )
    assert resp.status == 200, body
    token = body["data"]["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    resp, me = await call(http, "GET", f"{users_api}/v1/users/me", headers=headers)
    assert resp.status == 200, me
    return Session(me["data"]["id"], headers, email)
