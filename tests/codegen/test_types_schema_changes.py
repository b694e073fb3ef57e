"""The types step and `make sqlc-check` after a schema change, on the real servers: a fresh
migration from the template (comments only) changes no schema and is not sent to the
server (asyncpg fails on an empty query, MagicStack/asyncpg#1259); a lock made for another
schema is said in one line naming the fix, not as the plugin's follow-on complaints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codegen.typeslock import has_statement
from tests.codegen.project_support import write_sqlc_yaml
from tests.servers import Servers
from tools import sqlc
from tools.migrations.migrate import template

SCHEMA = {
    "postgresql": "CREATE TABLE t (id bigserial PRIMARY KEY, name text NOT NULL);\n",
    "mysql": "CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, name TEXT NOT NULL);\n",
}
DRIVER = {"postgresql": "asyncpg", "mysql": "aiomysql"}
# count(*) over a window: sqlc's own guess is 'any', the server's bigint
QUERY = "-- name: Page :many\nSELECT id, name, count(*) OVER () AS total FROM t ORDER BY id;\n"


def project(tmp_path: Path, engine: str, servers: Servers, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TEST_PG_DSN", servers.pg_dsn)
    monkeypatch.setenv("TEST_MYSQL_DSN", servers.mysql_dsn)
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_initial.sql").write_text(SCHEMA[engine])
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries" / "q.sql").write_text(QUERY)
    write_sqlc_yaml(
        tmp_path,
        engine,
        f"{{driver: {DRIVER[engine]}}}",
        "[migrations/0001_initial.sql, migrations/0002_add_note.sql]",
    )
    return str(tmp_path)


def add_migration(root: str, engine: str, text: str | None = None) -> None:
    """migrations/0002_add_note.sql: `text`, or what `make migrate-new` writes."""
    fresh, _rollback = template(engine, "0002_add_note")
    (Path(root) / "migrations" / "0002_add_note.sql").write_text(fresh if text is None else text)


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_a_fresh_comment_only_migration_is_skipped_by_the_types_step(
    tmp_path: Path, servers: Servers, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    root = project(tmp_path, engine, servers, monkeypatch)
    add_migration(root, engine)  # `make migrate-new`: the template, every line a comment
    sqlc.generate(root)  # `make sqlc`: the lock is written, the code generated
    lock = json.loads((tmp_path / "types.lock.json").read_text())
    assert lock["queries"]["Page"]["columns"][2] in ("int8", "bigint"), lock
    assert (tmp_path / "out").is_dir()
    sqlc.check(root)  # `make sqlc-check`: current


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_check_says_a_lock_made_for_another_schema_in_one_line_naming_the_fix(
    tmp_path: Path, servers: Servers, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    root = project(tmp_path, engine, servers, monkeypatch)
    add_migration(root, engine)
    sqlc.generate(root)
    add_migration(root, engine, "ALTER TABLE t ADD COLUMN note TEXT NULL;\n")  # schema changed
    with pytest.raises(sqlc.SqlcError) as info:
        sqlc.check(root)
    message = str(info.value)
    assert message == (
        f"{root}: the types lock is stale (the schema changed); run make sqlc db={root}"
    )
    sqlc.generate(root)  # the fix it names
    sqlc.check(root)


@pytest.mark.parametrize(
    ("script", "mysql", "expected"),
    [
        ("", False, False),
        ("  \n;\n-- only a comment\n", False, False),
        ("/* a /* nested */ still comment */ ;", False, False),
        ("/* a /* nested */ still comment */ SELECT 1", False, True),
        ("-- note\nALTER TABLE t ADD COLUMN c text;", False, True),
        ("# a MySQL comment\n/* block */ -- line\n;", True, False),
        ("/*!40101 SET NAMES utf8mb4 */;", True, True),  # run by MySQL: a statement
        ("# a MySQL comment\n", False, True),  # on PostgreSQL `#` is an operator
    ],
)
def test_has_statement(script: str, mysql: bool, expected: bool) -> None:
    assert has_statement(script, mysql=mysql) is expected
