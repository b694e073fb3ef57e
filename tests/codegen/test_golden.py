"""The generated code of the test schemas equals the reviewed golden files.

Regenerate after a deliberate change with `make codegen-golden` and review the diff.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import yaml

from tests.codegen.conformance import support
from tests.servers import Servers
from tools import sqlc

HERE = Path(__file__).parent
PLUGIN = HERE.parents[1] / "codegen" / "bin" / "sqlc-gen-fixup"

CASES = [
    "tests/codegen/pg",
    "tests/codegen/psycopg",
    "tests/codegen/psycopg_sync",
    "tests/codegen/pydantic",
    "tests/codegen/attrs",
    "tests/codegen/mysql",
    "tests/codegen/sqlite",
    "tests/codegen/aiosqlite",
]


@pytest.mark.parametrize("case", CASES)
def test_generated_code_equals_golden(case: str) -> None:
    sqlc.check(case)  # regenerates into a temp dir (strict: a stale types lock fails too)


@pytest.mark.parametrize("db", ["departments", "points"])
def test_service_repositories_are_current(db: str) -> None:
    sqlc.check(db)


def copy_case(tmp_path: Path) -> Path:
    """tests/codegen/pg and its golden files, copied: a killed test leaves the tree clean."""
    case = tmp_path / "codegen" / "pg"
    shutil.copytree(HERE / "pg", case)
    shutil.copytree(HERE / "golden" / "pg", tmp_path / "codegen" / "golden" / "pg")
    config = yaml.safe_load((case / "sqlc.yaml").read_text())
    config["plugins"][0]["process"]["cmd"] = str(PLUGIN)
    (case / "sqlc.yaml").write_text(yaml.safe_dump(config))
    return case


def test_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    case = copy_case(tmp_path)
    sqlc.check(str(case))  # the copy is current
    golden = tmp_path / "codegen" / "golden" / "pg" / "books.py"
    golden.write_text(golden.read_text() + "# edited by hand\n")
    with pytest.raises(sqlc.SqlcError, match=r"not current \(stale: books.py\)"):
        sqlc.check(str(case))


def test_check_fails_on_a_stale_types_lock(tmp_path: Path) -> None:
    case = copy_case(tmp_path)
    lock = case / "types.lock.json"
    lock.write_text(lock.read_text().replace('"sql_sha256": "', '"sql_sha256": "0', 1))
    with pytest.raises(sqlc.SqlcError, match=r"query \w+: the types lock is stale"):
        sqlc.check(str(case))


def test_generate_refreshes_a_stale_lock(
    tmp_path: Path, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make sqlc` after a schema change: one command asks the server and regenerates."""
    monkeypatch.setenv("TEST_PG_DSN", servers.pg_dsn)
    case = copy_case(tmp_path)
    schema = case / "schema.sql"
    schema.write_text(schema.read_text().replace("title      text NOT NULL", "title varchar(80)"))
    sqlc.generate(str(case))
    sqlc.check(str(case))  # strict: lock and code current
    books = (tmp_path / "codegen" / "golden" / "pg" / "books.py").read_text()
    assert "conn: PgConn, *, author_id: int, title: str | None, price: Decimal" in books


def test_generate_fails_loudly_when_the_lock_is_stale_and_no_server_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("TEST_PG_DSN", f"postgresql://postgres@127.0.0.1:{port}/postgres")
    case = copy_case(tmp_path)
    (case / "schema.sql").write_text((case / "schema.sql").read_text() + "\n-- changed\n")
    before = (tmp_path / "codegen" / "golden" / "pg" / "authors.py").read_text()
    with pytest.raises(sqlc.SqlcError, match="cannot reach the postgresql server at "):
        sqlc.generate(str(case))
    assert (tmp_path / "codegen" / "golden" / "pg" / "authors.py").read_text() == before


@pytest.mark.parametrize("case", ["pg", "mysql", "sqlite", "aiosqlite"])
def test_golden_code_passes_mypy_strict(case: str) -> None:
    result = support.mypy_strict(HERE / "golden" / case)
    assert result.returncode == 0, result.stdout + result.stderr
