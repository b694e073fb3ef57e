"""A SQLite column no nullability rule decides is Optional, and the generated package says
so in a `# allowed:` line of its `__init__.py` (codegen/README.md, SQLite's rules)."""

from __future__ import annotations

from pathlib import Path

from tests.codegen.inline_support import generate
from tests.servers import Servers

SCHEMA = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n"
QUERIES = (
    "-- name: Sizes :many\n"
    "SELECT id, sqlite_compileoption_get(id) AS size FROM notes;\n"  # not in the rules
)


def test_an_undecided_column_is_optional_and_recorded(tmp_path: Path, servers: Servers) -> None:
    out = generate(
        tmp_path, servers, "undecided", engine="sqlite", schema=SCHEMA, queries=QUERIES,
        options={"driver": "sqlite3"},
    )  # fmt: skip
    init = next(out.rglob("__init__.py")).read_text()
    assert "query Sizes: column 'size': NULL undecided; Optional" in init, init
    generated = "".join(p.read_text() for p in out.rglob("*.py"))
    assert "size: str | None" in generated, generated
    assert "id: int\n" in generated  # INTEGER PRIMARY KEY: the rowid, decided
