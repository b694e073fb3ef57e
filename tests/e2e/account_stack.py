"""A new user's stack, as `make run` starts it: users, departments and points as real
processes with the keys `make keys` writes, mail into a local SMTP sink, and NGINX in
front (the API, Swagger UI at /docs/ and the account pages). Used by
tests/e2e/test_users_flow.py and tests/e2e/test_account_pages.py.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.gateway_stack import Gateway, seed_departments
from tests.e2e.story_stack import call
from tests.integration.smtp_support import SmtpSink, smtp_sink
from tools import keys, swag_config
from tools.local.ports import free_port
from tools.local.service_process import ServiceProcess

PASSWORD = "correct horse battery"


@dataclass
class AccountStack:
    gateway: Gateway
    services: list[ServiceProcess]
    sink: SmtpSink
    users_dsn: str
    department_id: str
    encryption_key_file: Path

    @property
    def api(self) -> str:
        return f"{self.gateway.url}/api/users"

    def log_texts(self) -> dict[str, str]:
        """Every line any process of the stack wrote (NGINX's access and error logs too)."""
        paths = [s.log for s in self.services]
        paths += [self.gateway.access_log, self.gateway.error_log, self.gateway.output]
        return {str(p): p.read_text() for p in paths if p.exists()}


@contextlib.asynccontextmanager
async def running_account_stack(
    tmp: Path, users_dsn: str, departments_dsn: str, points_dsn: str, public_host: str = ""
) -> AsyncIterator[AccountStack]:
    """`public_host`: the host of PUBLIC_BASE_URL (the gateway's port), where the browser
    opens the pages; default the gateway's own address. A passkey needs a domain (an RP ID
    is never an IP address): `localhost`."""
    department_id = seed_departments(departments_dsn)[0]
    key_dir = tmp / "keys"
    assert keys.main(["--dir", str(key_dir)]) == 0  # what `make run` does first
    public_key = str(key_dir / keys.PUBLIC_NAME)
    common = {"WORKERS": "1", "REDIS_URL": "", "DB_POOL_MIN": "1", "JWT_PUBLIC_KEY": "",
              "JWT_PUBLIC_KEY_FILE": public_key}  # fmt: skip
    grpc_port, users_port, departments_port = free_port(), free_port(), free_port()
    docs = tmp / "docs"
    try:
        swag_config.assemble(docs)  # Swagger UI at /docs/, as `make run` serves it
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
    gateway = Gateway(
        tmp,
        {"users": [f"127.0.0.1:{users_port}"], "departments": [f"127.0.0.1:{departments_port}"]},
        docs,
    )
    services: list[ServiceProcess] = []
    with smtp_sink() as sink:
        try:
            departments_env = {**common, "DEPARTMENTS_DATABASE_URL": departments_dsn,
                               "DEPARTMENTS_PORT": str(departments_port)}  # fmt: skip
            departments = ServiceProcess(departments_env, tmp / "departments.log")
            services.append(departments)
            points_env = {**common, "POINTS_DATABASE_URL": points_dsn,
                          "POINTS_PORT": str(free_port()),
                          "POINTS_GRPC_PORT": str(grpc_port)}  # fmt: skip
            services.append(ServiceProcess(points_env, tmp / "points.log", name="points"))
            users_env = {
                **common, "USERS_DATABASE_URL": users_dsn, "USERS_PORT": str(users_port),
                "LOG_LEVEL": "DEBUG",  # no secret may show up even here
                "PUBLIC_BASE_URL": public_url(gateway, public_host),
                "JWT_PRIVATE_KEY": "", "ENCRYPTION_KEY": "",
                "JWT_PRIVATE_KEY_FILE": str(key_dir / keys.PRIVATE_NAME),
                "ENCRYPTION_KEY_FILE": str(key_dir / keys.ENCRYPTION_NAME),
                "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sink.port), "SMTP_TIMEOUT": "2",
                "DEPARTMENTS_URL": departments.url,
                "POINTS_GRPC_ADDR": f"127.0.0.1:{grpc_port}",
            }  # fmt: skip
            users = ServiceProcess(users_env, tmp / "users.log", name="users")
            services.append(users)
            for service in services:
                await service.wait_healthy()
            await gateway.start()
            yield AccountStack(
                gateway, services, sink, users_dsn, department_id,
                key_dir / keys.ENCRYPTION_NAME,
            )  # fmt: skip
        finally:
            gateway.stop()
            for service in services:
                service.stop()


def public_url(gateway: Gateway, host: str) -> str:
    return f"http://{host}:{gateway.port}" if host else gateway.url


def new_account(role: str = "CUSTOMER", **extra: Any) -> dict[str, Any]:
    return {
        "email": f"e2e{uuid.uuid4().hex[:12]}@fixup.test",
        "password": PASSWORD,
        "first_name": "Grace",
        "last_name": "Hopper",
        "phone_number": "+1 555 0100",
        "role": role,
        **extra,
    }


async def registered(stack: AccountStack) -> dict[str, Any]:
    """A new CUSTOMER registered through NGINX: new_account()'s fields and its `id`."""
    account = new_account()
    async with aiohttp.ClientSession() as http:
        resp, body = await call(http, "POST", f"{stack.api}/v1/auth/register", json=account)
        assert resp.status == 201, body
    return {**account, "id": body["data"]["id"]}
