"""Fixtures of the integration tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.catalog.app import create_app as catalog_app
from services.chat.app import create_app as chat_app
from services.departments.app import create_app
from services.orders.app import create_app as orders_app
from tests import pg
from tests.integration.auth_support import settings_for
from tests.integration.catalog_support import catalog_settings
from tests.integration.chat_support import ChatFactory, World, chat_settings, make_world
from tests.integration.orders_support import orders_settings
from tests.integration.points_support import Points, running_points
from tests.integration.smtp_support import SmtpSink, smtp_sink
from tests.logging_support import logging_to
from tests.proxy import TcpProxy
from tests.reliability.throwaway import RedisServer


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own on a free port, to stop, pause and start again
    (the machine's shared Redis is never stopped)."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()  # a paused one too


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's S3 in server mode on loopback, one per module (a bucket per test: s3_support)."""
    from tests.pictures_support import moto_server  # moto and Pillow: only where S3 is used

    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
async def sink() -> AsyncIterator[SmtpSink]:
    """An SMTP server of this module's own (aiosmtpd), holding what the services mail."""
    with smtp_sink() as running:
        yield running


@pytest.fixture(scope="module")
async def department(departments_dsn: str) -> uuid.UUID:
    """A department row of this module's departments database (users' foreign reference)."""
    dept: uuid.UUID = await pg.fetchval(
        departments_dsn,
        "INSERT INTO departments (name, address) VALUES ($1, 'Somewhere 1') RETURNING id",
        f"Dept {uuid.uuid4().hex[:8]}",
    )
    return dept


@pytest.fixture
async def client(aiohttp_client: Any, departments_dsn: str) -> Any:
    """A test client of the departments app on a migrated database of this module."""
    return await aiohttp_client(create_app(settings_for(departments_dsn)))


@pytest.fixture
def points_log(tmp_path: Path) -> Iterator[Path]:
    """The points service's log lines of this test, as JSON lines in a file."""
    path = tmp_path / "points.log"
    with logging_to("points", str(path)):
        yield path


@pytest.fixture(scope="module")
async def points(points_dsn: str) -> AsyncIterator[Points]:
    """A real grpc.aio points server on loopback over an empty migrated MariaDB db."""
    async with running_points(points_dsn) as running:
        yield running


# --- chat: the real catalog -> orders -> chat chain on loopback ---------------------------


@pytest.fixture(scope="module")
def chat_catalog_dsn(migrated_db: Callable[[str], str]) -> str:
    return migrated_db("catalog")


@pytest.fixture(scope="module")
def chat_orders_dsn(migrated_db: Callable[[str], str]) -> str:
    return migrated_db("orders")


@pytest.fixture
async def chat_catalog_server(aiohttp_server: Any, chat_catalog_dsn: str) -> Any:
    return await aiohttp_server(catalog_app(catalog_settings(chat_catalog_dsn)))


@pytest.fixture
async def chat_orders_server(
    aiohttp_server: Any, chat_orders_dsn: str, chat_catalog_server: Any
) -> Any:
    settings = orders_settings(
        chat_orders_dsn, catalog_url=f"http://127.0.0.1:{chat_catalog_server.port}"
    )
    return await aiohttp_server(orders_app(settings))


@pytest.fixture
async def chat_orders_proxy(chat_orders_server: Any) -> AsyncIterator[TcpProxy]:
    proxy = await TcpProxy("127.0.0.1", chat_orders_server.port).start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def chat_world(
    aiohttp_client: Any, chat_catalog_server: Any, chat_orders_server: Any
) -> World:
    catalog = await aiohttp_client(chat_catalog_server)
    orders = await aiohttp_client(chat_orders_server)
    return await make_world(catalog, orders)


@pytest.fixture
def chat_factory(
    aiohttp_client: Any, chat_dsn: str, chat_orders_proxy: TcpProxy, redis_prefix: str
) -> ChatFactory:
    async def make(**overrides: Any) -> Any:
        settings = chat_settings(
            chat_dsn,
            redis_prefix,
            **({"orders_url": f"http://127.0.0.1:{chat_orders_proxy.port}"} | overrides),
        )
        return await aiohttp_client(chat_app(settings))

    return make


@pytest.fixture
async def chat(chat_factory: ChatFactory) -> Any:
    return await chat_factory()
