"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.departments.app import create_app
from tests.integration.auth_support import settings_for


@pytest.fixture(scope="module")
def departments_dsn(migrated_db: Callable[[str], str]) -> str:
    return migrated_db("departments")


@pytest.fixture
async def client(aiohttp_client: Any, departments_dsn: str) -> Any:
    """A test client of the departments app on a migrated database of this module."""
    return await aiohttp_client(create_app(settings_for(departments_dsn)))
