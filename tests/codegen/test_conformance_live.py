"""The live conformance run (tests/codegen/conformance/live.py) on SQLite: the plugin's
SQLite test queries and the conformance project of the constructs SQLite answers NULL to
where PostgreSQL would not (primary keys but the rowid, FULL JOIN, an embedded outer
side, functions on bad input, NaN arithmetic, FTS5) hold no Optional lie; and a planted
lie (a NOT NULL claim forced on a nullable column) is caught, named, its witness kept."""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path
from types import ModuleType

import yaml

from tests.codegen.conformance import live
from tests.codegen.conformance.live_sqlite import SqliteDatabase
from tools.sqlc_run import run_sqlc

HERE = Path(__file__).parent
PLUGIN = HERE.parents[1] / "codegen" / "bin" / "sqlc-gen-fixup"


def generate_sqlite(case: Path, into: Path, package: str, plant: str = "") -> ModuleType:
    """`case` generated as `package` under `into` and imported; `plant` ("old>new")
    edits the generated q.py first."""
    project = into / f"{package}_project"
    shutil.copytree(case, project)
    config = yaml.safe_load((project / "sqlc.yaml").read_text())
    config["plugins"][0]["process"]["cmd"] = str(PLUGIN)
    config["sql"][0]["codegen"][0]["out"] = f"../{package}"
    (project / "sqlc.yaml").write_text(yaml.safe_dump(config))
    run_sqlc(project)
    if plant:
        old, new = plant.split(">")
        generated = into / package / "q.py"
        text = generated.read_text()
        assert old in text, f"nothing to plant in: {old!r}"
        generated.write_text(text.replace(old, new, 1))
    sys.path.insert(0, str(into))
    try:
        return importlib.import_module(package)
    finally:
        sys.path.remove(str(into))


async def test_sqlite_test_queries_hold_no_lie() -> None:
    database = SqliteDatabase((HERE / "sqlite" / "schema.sql").read_text())
    lies = await live.run("tests.codegen.golden.sqlite", ["authors", "books"], database)
    assert not lies, live.report(lies)


async def test_sqlite_conformance_queries_hold_no_lie(tmp_path: Path) -> None:
    case = HERE / "conformance" / "sqlite"
    package = generate_sqlite(case, tmp_path, "live_sqlite")
    database = SqliteDatabase((case / "schema.sql").read_text())
    lies = await live.run(package.__name__, ["q"], database)
    assert not lies, live.report(lies)


async def test_a_planted_lie_is_caught_and_its_witness_kept(tmp_path: Path) -> None:
    case = HERE / "conformance" / "sqlite"
    plant = "    owner: str | None\n>    owner: str\n"  # FULL JOIN's left side, said NOT NULL
    package = generate_sqlite(case, tmp_path, "live_planted", plant=plant)
    database = SqliteDatabase((case / "schema.sql").read_text())
    lies = await live.run(package.__name__, ["q"], database, tmp_path / "witnesses")
    assert [(lie.query, lie.column) for lie in lies] == [("q.full_join", "column owner")]
    witness = lies[0].witness.read_text()
    assert 'INSERT INTO "pets"' in witness
    assert "FULL OUTER JOIN pets" in witness
