"""The live conformance run (tests/codegen/conformance/live.py) on PostgreSQL and MariaDB:
every query of the plugin's tests of that engine (tests/codegen/pg, patch_pg, mysql; the
conformance projects in test_conformance_pg.py and test_conformance_mysql.py) and of the
repository's databases of that engine (sql/) holds no lie on a test database with its
schema; and a planted lie is caught, named, its witness kept."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.codegen.conformance import live, live_mysql, live_pg
from tests.servers import DatabaseFactory
from tools.sqlc_types import apply_schema


@dataclass(frozen=True)
class Engine:
    engine: str  # the test database's (DatabaseFactory.create)
    live_run: Callable[..., Awaitable[list[live.Lie]]]
    configs: list[Path]
    # the planted lie: a LEFT JOIN's outer column said NOT NULL in the golden package
    module: str
    row: str
    query: str
    column: str
    witness: tuple[str, ...]  # what its witness must show: the rows inserted, the query


PG = Engine(
    "postgresql",
    live_pg.live_run,
    live.configs("postgresql", "pg", "patch_pg"),
    "authors",
    "class AuthorsWithBooksRow:\n    id: int\n    name: str\n    title: str | None\n",
    "authors.authors_with_books",
    "column title",
    ("INSERT INTO public.authors", "LEFT JOIN books b ON b.author_id = a.id"),
)
MARIADB = Engine(
    "mysql",
    live_mysql.live_run,
    live.configs("mysql", "mysql"),
    "gadgets",
    "class GadgetsWithPartsRow:\n    id: int\n    name: str\n    label: str | None\n",
    "gadgets.gadgets_with_parts",
    "column label",
    ("INSERT INTO `gadgets`", "LEFT JOIN parts p ON p.gadget_id = g.id"),
)
ENGINES = {"pg": PG, "mariadb": MARIADB}


def prepared(databases: DatabaseFactory, engine: Engine, project: live.Project) -> str:
    """A new database with the project's schema."""
    dsn = databases.create("live", engine.engine)
    apply_schema(dsn, project.schema)
    return dsn


@pytest.mark.parametrize(
    ("engine", "config"),
    [(engine, config) for engine in ENGINES.values() for config in engine.configs],
    ids=[f"{name}-{config.parent.name}" for name, e in ENGINES.items() for config in e.configs],
)
async def test_the_queries_hold_no_lie(
    databases: DatabaseFactory, engine: Engine, config: Path
) -> None:
    project = live.Project.of(config)
    lies = await engine.live_run(prepared(databases, engine, project), project)
    assert not lies, live.report(lies)


@pytest.mark.parametrize("engine", ENGINES.values(), ids=ENGINES.keys())
async def test_a_planted_lie_is_caught_and_its_witness_kept(
    databases: DatabaseFactory, engine: Engine, tmp_path: Path
) -> None:
    golden = live.Project.of(engine.configs[0])
    lying = engine.row.replace(" | None", "")
    package = live.planted(golden.package, tmp_path, engine.module, engine.row, lying)
    project = live.Project(package, golden.modules, golden.schema)
    database = prepared(databases, engine, project)
    lies = await engine.live_run(database, project, tmp_path / "witnesses")
    assert [(lie.query, lie.column) for lie in lies] == [(engine.query, engine.column)]
    witness = lies[0].witness.read_text()
    for shown in engine.witness:
        assert shown in witness


async def test_a_parameter_of_a_wrong_type_is_caught(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    """The golden asyncpg package with GetAuthor's bigint parameter said text: the driver
    refuses the argument of that annotation, and the run names the call."""
    golden = live.Project.of(PG.configs[0])
    old = "async def get_author(conn: PgConn, *, id: int)"
    package = live.planted(golden.package, tmp_path, "authors", old, old.replace("int", "str"))
    project = live.Project(package, golden.modules, golden.schema)
    lies = await PG.live_run(prepared(databases, PG, project), project, tmp_path / "witnesses")
    assert [(lie.query, lie.column) for lie in lies] == [("authors.get_author", "the call")]
    assert "invalid input for query argument $1" in lies[0].what
