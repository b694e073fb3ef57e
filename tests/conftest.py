"""Real-server fixtures shared by every test (see tests/servers.py for the rules)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.servers import RUN_ID, DatabaseFactory, Servers, ServerUnavailableError, resolve_servers
from tools import migrate
from tools.databases import get_database


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    try:
        found = resolve_servers()
    except ServerUnavailableError as exc:
        pytest.fail(f"a real server the tests need is missing:\n{exc}", pytrace=False)
    yield found
    found.stop()


@pytest.fixture(scope="session")
def databases(servers: Servers) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(servers)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def migrated_db(databases: DatabaseFactory) -> Callable[[str], str]:
    """`migrated_db("users")` -> DSN of a new database of this run, every migration applied."""

    def make(db: str) -> str:
        dsn = databases.create(db, get_database(db).engine)
        migrate.up(db, dsn)
        return dsn

    return make


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    """Every key and channel a test writes starts with this; Redis is never flushed."""
    return f"fixup:test:{RUN_ID}:"
