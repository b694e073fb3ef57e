"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from services.departments.app import create_app
from tests.integration.auth_support import settings_for
from tests.integration.points_support import Points, running_points


@pytest.fixture(scope="module")
def departments_dsn(migrated_db: Callable[[str], str]) -> str:
    return migrated_db("departments")


@pytest.fixture
async def client(aiohttp_client: Any, departments_dsn: str) -> Any:
    """A test client of the departments app on a migrated database of this module."""
    return await aiohttp_client(create_app(settings_for(departments_dsn)))


@pytest.fixture(scope="module")
def points_dsn(migrated_db: Callable[[str], str]) -> str:
    return migrated_db("points")


@pytest.fixture(scope="module")
async def points(points_dsn: str) -> AsyncIterator[Points]:
    """A real grpc.aio points server on loopback over an empty migrated MariaDB db."""
    async with running_points(points_dsn) as running:
        yield running
