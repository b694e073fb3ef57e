"""The live conformance run (tests/codegen/conformance/live.py) on PostgreSQL: every query
of the plugin's PostgreSQL tests (tests/codegen/pg, patch_pg; the conformance project in
test_conformance_pg.py) and of the repository's PostgreSQL databases (sql/) holds no lie on
a test database with its schema; and a planted lie is caught, named, its witness kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.codegen.conformance import live
from tests.codegen.conformance.live_pg import live_run
from tests.servers import DatabaseFactory
from tools.sqlc_types import apply_schema

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = live.configs("postgresql", "pg", "patch_pg")


def prepared(databases: DatabaseFactory, project: live.Project) -> str:
    """A new database with the project's schema."""
    dsn = databases.create("live_pg", "postgresql")
    apply_schema(dsn, project.schema)
    return dsn


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.parent.name)
async def test_the_queries_hold_no_lie(databases: DatabaseFactory, config: Path) -> None:
    project = live.Project.of(config)
    lies = await live_run(prepared(databases, project), project)
    assert not lies, live.report(lies)


async def test_a_planted_lie_is_caught_and_its_witness_kept(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    """The golden asyncpg package with a LEFT JOIN's outer column said NOT NULL."""
    golden = live.Project.of(CONFIGS[0])
    old = "class AuthorsWithBooksRow:\n    id: int\n    name: str\n    title: str | None\n"
    package = live.planted(golden.package, tmp_path, "authors", old, old.replace(" | None", ""))
    project = live.Project(package, golden.modules, golden.schema)
    lies = await live_run(prepared(databases, project), project, tmp_path / "witnesses")
    assert [(lie.query, lie.column) for lie in lies] == [
        ("authors.authors_with_books", "column title")
    ]
    witness = lies[0].witness.read_text()
    assert "INSERT INTO public.authors" in witness
    assert "LEFT JOIN books b ON b.author_id = a.id" in witness


async def test_a_parameter_of_a_wrong_type_is_caught(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    """The golden asyncpg package with GetAuthor's bigint parameter said text: the driver
    refuses the argument of that annotation, and the run names the call."""
    golden = live.Project.of(CONFIGS[0])
    old = "async def get_author(conn: PgConn, *, id: int)"
    package = live.planted(golden.package, tmp_path, "authors", old, old.replace("int", "str"))
    project = live.Project(package, golden.modules, golden.schema)
    lies = await live_run(prepared(databases, project), project, tmp_path / "witnesses")
    assert [(lie.query, lie.column) for lie in lies] == [("authors.get_author", "the call")]
    assert "invalid input for query argument $1" in lies[0].what
