"""Fixtures of the reliability suite: the services as real processes on databases of this
run, and the figures printed at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.smtp_support import SMTP_TIMEOUT, SmtpSink, smtp_sink
from tests.reliability import figures
from tests.reliability.stack import ACQUIRE_TIMEOUT, POOL_MAX, common_env, start, users_env
from tests.servers import Servers
from tools.local.service_process import ServiceProcess


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if figures.FIGURES:
        terminalreporter.section("reliability figures")
        for line in figures.summary():
            terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: Any) -> Path:
    return Path(tmp_path_factory.mktemp("reliability"))


@pytest.fixture(scope="module")
async def departments(departments_dsn: str, logs: Path) -> AsyncIterator[ServiceProcess]:
    env = common_env("departments", departments_dsn, DB_POOL_MAX=POOL_MAX)
    service = await start("departments", env, logs / "departments.log")
    yield service
    service.stop()


@pytest.fixture
def service(request: pytest.FixtureRequest) -> ServiceProcess:
    """The process of this module the test names by its fixture (indirect parametrization:
    `departments`, `users`, ...)."""
    process: ServiceProcess = request.getfixturevalue(request.param)
    return process


@pytest.fixture(scope="module")
async def mail_sink() -> AsyncIterator[SmtpSink]:
    with smtp_sink() as sink:
        yield sink


@pytest.fixture(scope="module")
async def users(
    users_dsn: str, departments: ServiceProcess, mail_sink: SmtpSink, logs: Path
) -> AsyncIterator[ServiceProcess]:
    """Users as deployed: its PATCHes check department ids with the real departments, its
    mails go to an SMTP server (here a sink), pictures to a directory of this run."""
    env = users_env(
        users_dsn,
        DB_POOL_MAX=POOL_MAX,
        DEPARTMENTS_URL=departments.url,
        STORAGE_DIR=str(logs / "storage"),
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(mail_sink.port),
        SMTP_TIMEOUT=str(SMTP_TIMEOUT),
        MAIL_RELAY_INTERVAL="0.2",
    )
    service = await start("users", env, logs / "users.log")
    yield service
    service.stop()


@pytest.fixture(scope="module")
async def catalog(catalog_dsn: str, logs: Path) -> AsyncIterator[ServiceProcess]:
    env = common_env("catalog", catalog_dsn, DB_POOL_MAX=POOL_MAX)
    service = await start("catalog", env, logs / "catalog.log")
    yield service
    service.stop()


@pytest.fixture(scope="module")
async def orders(
    orders_dsn: str, catalog: ServiceProcess, users: ServiceProcess, logs: Path
) -> AsyncIterator[ServiceProcess]:
    """Orders as deployed: catalog checked and the customer's name read from the real
    services (no points relay: the outbox is tested on its own)."""
    env = common_env(
        "orders",
        orders_dsn,
        DB_POOL_MAX=POOL_MAX,
        DB_ACQUIRE_TIMEOUT=str(ACQUIRE_TIMEOUT),
        ORDERS_CATALOG_URL=catalog.url,
        ORDERS_USERS_URL=users.url,
        ORDERS_POINTS_GRPC_ADDR="",
    )
    service = await start("orders", env, logs / "orders.log")
    yield service
    service.stop()


@pytest.fixture(scope="module")
async def chat(
    chat_dsn: str, orders: ServiceProcess, servers: Servers, redis_prefix: str, logs: Path
) -> AsyncIterator[ServiceProcess]:
    """Chat as deployed: the participants of a conversation read from the real orders (with
    the caller's token), messages fanned out through the test Redis on channels under the
    run's prefix (Redis is shared and never flushed)."""
    env = common_env(
        "chat",
        chat_dsn,
        DB_POOL_MAX=POOL_MAX,
        DB_ACQUIRE_TIMEOUT=str(ACQUIRE_TIMEOUT),
        CHAT_ORDERS_URL=orders.url,
        REDIS_URL=servers.redis_url,
        CHAT_CHANNEL_PREFIX=f"{redis_prefix}chat:",
    )
    service = await start("chat", env, logs / "chat.log")
    yield service
    service.stop()
