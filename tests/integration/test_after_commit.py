"""lib.db.committed against real PostgreSQL and MariaDB: an action registered inside a
transaction runs once the outermost commits, never for a rollback (a savepoint's own
included), at once outside any transaction, and an async one awaited on the commit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lib.db.committed import after_commit
from lib.db.connecting import connect
from lib.db.pool import Database
from tests.servers import DatabaseFactory


@pytest.fixture(params=["postgresql", "mysql"])
async def db(request: pytest.FixtureRequest, databases: DatabaseFactory) -> AsyncIterator[Database]:
    database = await connect(databases.create("commit", request.param), min_size=1, max_size=2)
    yield database
    await database.close()


class Boom(Exception):
    pass


async def test_actions_run_after_the_outermost_commit_only(db: Database) -> None:
    ran: list[str] = []
    after_commit(lambda: ran.append("outside"))
    assert ran == ["outside"]  # no transaction: at once
    async with db.transaction():
        after_commit(lambda: ran.append("outer"))
        async with db.transaction():  # a savepoint: kept until the outermost commits
            after_commit(lambda: ran.append("inner"))
        assert ran == ["outside"]
    assert ran == ["outside", "outer", "inner"]


async def failing(db: Database, ran: list[str], what: str) -> None:
    async with db.transaction():
        after_commit(lambda: ran.append(what))
        raise Boom


async def test_a_rollback_drops_the_actions_registered_inside_it(db: Database) -> None:
    ran: list[str] = []
    with pytest.raises(Boom):
        await failing(db, ran, "rolled back")
    async with db.transaction():
        after_commit(lambda: ran.append("kept"))
        with pytest.raises(Boom):
            await failing(db, ran, "savepoint rolled back")
    assert ran == ["kept"]
    after_commit(lambda: ran.append("after"))  # nothing left open
    assert ran == ["kept", "after"]


async def test_an_async_action_is_awaited_once_the_outermost_commits(db: Database) -> None:
    ran: list[str] = []

    async def push() -> None:
        ran.append("pushed")

    async with db.transaction():
        after_commit(push)
        async with db.transaction():
            after_commit(push)
        assert ran == []
    assert ran == ["pushed", "pushed"]
    with pytest.raises(RuntimeError, match="inside a transaction"):
        after_commit(push)  # nothing to wait for: a mistake, not a silent drop
