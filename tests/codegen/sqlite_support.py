"""A sqlc project on tests/codegen/sqlite's schema, for the SQLite tests of the plugin."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

HERE = Path(__file__).parent
PLUGIN = HERE.parents[1] / "codegen" / "bin" / "sqlc-gen-fixup"
SCHEMA = HERE / "sqlite" / "schema.sql"


def project(root: Path, package: str, options: str, queries: Path | None = None) -> Path:
    """A sqlc project on the SQLite test schema writing `package` under `root`."""
    case = root / f"{package}_project"
    shutil.copytree(queries or HERE / "sqlite" / "queries", case / "queries")
    shutil.copy(SCHEMA, case / "schema.sql")
    (case / "sqlc.yaml").write_text(
        textwrap.dedent(f"""
        version: "2"
        plugins:
          - name: fixup
            process: {{cmd: {PLUGIN}}}
        sql:
          - engine: sqlite
            schema: [schema.sql]
            queries: queries
            codegen:
              - {{out: ../{package}, plugin: fixup, options: {options}}}
        """)
    )
    return case
