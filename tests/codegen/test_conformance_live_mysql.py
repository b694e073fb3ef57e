"""The live conformance run (tests/codegen/conformance/live.py) on MariaDB: every query of
the plugin's MySQL tests (tests/codegen/mysql; the conformance project in
test_conformance_mysql.py) and of the repository's MariaDB database (sql/points) holds no
lie on a test database with its schema; and a planted lie is caught, named, its witness
kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.codegen.conformance import live
from tests.codegen.conformance.live_mysql import live_run
from tests.servers import DatabaseFactory
from tools.sqlc_types import apply_schema

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = live.configs("mysql", "mysql")


def prepared(databases: DatabaseFactory, project: live.Project) -> str:
    """A new database with the project's schema."""
    dsn = databases.create("live_my", "mysql")
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
    """The golden aiomysql package with a LEFT JOIN's outer column said NOT NULL."""
    golden = live.Project.of(CONFIGS[0])
    old = "class GadgetsWithPartsRow:\n    id: int\n    name: str\n    label: str | None\n"
    package = live.planted(golden.package, tmp_path, "gadgets", old, old.replace(" | None", ""))
    project = live.Project(package, golden.modules, golden.schema)
    lies = await live_run(prepared(databases, project), project, tmp_path / "witnesses")
    assert [(lie.query, lie.column) for lie in lies] == [
        ("gadgets.gadgets_with_parts", "column label")
    ]
    witness = lies[0].witness.read_text()
    assert "INSERT INTO `gadgets`" in witness
    assert "LEFT JOIN parts p ON p.gadget_id = g.id" in witness
