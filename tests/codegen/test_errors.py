"""Bad input fails with a clear message, a non-zero exit, and no file written."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.codegen.project_support import write_sqlc_yaml
from tests.servers import Servers
from tools import sqlc

SCHEMA = "CREATE TABLE t (id bigserial PRIMARY KEY, name text NOT NULL, doc pg_snapshot);\n"


LOCKLESS = "{driver: asyncpg, allow: [sqlc_types]}"  # no server here: sqlc's types accepted


def project(tmp_path: Path, query: str, options: str = LOCKLESS) -> Path:
    (tmp_path / "schema.sql").write_text(SCHEMA)
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries" / "q.sql").write_text(textwrap.dedent(query).lstrip())
    write_sqlc_yaml(tmp_path, "postgresql", options)
    return tmp_path


def generate_fails(tmp_path: Path, query: str, options: str = LOCKLESS) -> str:
    root = project(tmp_path, query, options)
    with pytest.raises(sqlc.SqlcError) as info:
        sqlc.run_sqlc(root)
    assert not (root / "out").exists(), "a failed generation must write nothing"
    return str(info.value)


def test_unknown_column(tmp_path: Path) -> None:
    message = generate_fails(tmp_path, "-- name: Q :many\nSELECT nope FROM t;\n")
    assert 'q.sql:2:8: column "nope" does not exist' in message


def test_syntax_error(tmp_path: Path) -> None:
    message = generate_fails(tmp_path, "-- name: Q :many\nSELEC id FROM t;\n")
    assert 'q.sql:2:2: syntax error at or near "SELEC"' in message


def test_without_a_types_lock_generation_fails_saying_so_once(tmp_path: Path) -> None:
    query = "-- name: A :one\nSELECT name FROM t WHERE id = $1;\n"
    query += "-- name: B :one\nSELECT id FROM t WHERE name = $1;\n"
    message = generate_fails(tmp_path, query, "{driver: asyncpg}")
    assert message.count("sqlc's types") == 1, message
    assert "the types lock types.lock.json does not exist" in message
    assert "sqlc-gen-fixup types --dsn" in message


def test_unmappable_type_fails_naming_it_unless_allowed_then_any_and_recorded(
    tmp_path: Path,
) -> None:
    query = "-- name: GetDoc :one\nSELECT doc FROM t WHERE id = $1;\n"
    (tmp_path / "strict").mkdir()
    message = generate_fails(tmp_path / "strict", query)
    assert "query GetDoc: column 'doc' has type 'pg_snapshot' that the plugin cannot map" in message
    assert "override" in message
    assert "[any]" in message
    root = project(tmp_path, query, "{driver: asyncpg, allow: [sqlc_types, any]}")
    sqlc.run_sqlc(root)
    assert "def get_doc(conn: PgConn, *, id: int) -> Any:" in (root / "out/q.py").read_text()
    assert "doc: Any" in (root / "out/models.py").read_text()
    init = (root / "out" / "__init__.py").read_text()
    assert "# allowed: q.sql: query GetDoc: column 'doc' has type 'pg_snapshot'" in init


def test_an_unknown_allowance_is_named(tmp_path: Path) -> None:
    message = generate_fails(tmp_path, "-- name: Q :many\nSELECT id FROM t;\n", "{allow: [all]}")
    assert "option 'allow' is ['all']: a list of these: sqlc_types:" in message


def test_an_override_maps_the_type(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "-- name: GetDoc :one\nSELECT doc FROM t WHERE id = $1;\n",
        options="{allow: [sqlc_types], overrides: [{db_type: pg_snapshot, py_type: str}]}",
    )
    sqlc.run_sqlc(root)
    assert (
        "async def get_doc(conn: PgConn, *, id: int) -> str | None:"
        in (root / "out" / "q.py").read_text()
    )


QUERIES_WITH_A_BAD_ONE = """
-- name: Ins :execlastid
INSERT INTO t (name) VALUES ($1);

-- name: GetName :one
SELECT name FROM t WHERE id = $1;
"""


def test_execlastid_without_returning_fails_naming_the_query(tmp_path: Path) -> None:
    message = generate_fails(tmp_path, QUERIES_WITH_A_BAD_ONE)
    assert "query Ins: :execlastid on PostgreSQL needs a one-column RETURNING clause" in message


def test_driver_must_fit_engine(tmp_path: Path) -> None:
    root = project(tmp_path, "-- name: Q :many\nSELECT id FROM t;\n", options="{driver: aiomysql}")
    with pytest.raises(sqlc.SqlcError, match="driver 'aiomysql' does not fit engine 'postgresql'"):
        sqlc.run_sqlc(root)
    assert not (root / "out").exists()


def test_an_unknown_model_type_is_named(tmp_path: Path) -> None:
    options = "{driver: psycopg, model_type: marshmallow}"
    root = project(tmp_path, "-- name: Q :many\nSELECT id FROM t;\n", options=options)
    known = "known: dataclass, msgspec, attrs, pydantic"
    with pytest.raises(sqlc.SqlcError, match=f"model_type is 'marshmallow'; {known}"):
        sqlc.run_sqlc(root)
    assert not (root / "out").exists()


def test_an_unpreparable_query_is_named_and_the_others_locked(
    tmp_path: Path, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PG_DSN", servers.pg_dsn)
    query = """
    -- name: Broken :one
    SELECT name FROM t WHERE id = 'not a number';

    -- name: GetName :one
    SELECT name FROM t WHERE id = $1;
    """
    root = project(tmp_path, query)
    with pytest.raises(sqlc.QueryFailures) as info:
        sqlc.types(str(root))
    message = str(info.value)
    assert (
        'queries/q.sql:1: query Broken: server says: invalid input syntax for type bigint: "not a'
        in message
    )
    lock = json.loads((root / "types.lock.json").read_text())
    assert lock["queries"]["GetName"]["columns"] == ["text"]
    assert lock["queries"]["GetName"]["params"] == ["int8"]
    assert "Broken" not in lock["queries"]
    assert "invalid input syntax" in lock["refused"]["Broken"]["message"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "-- name: Q :many\n-- fixup: onec total\nSELECT count(*) AS total FROM t;\n",
            "q.sql: query Q: unknown directive 'fixup: onec' (known: once, sort)",
        ),
        (
            "-- name: Q :one\n-- fixup: once total\nSELECT 1 AS total, id FROM t;\n",
            "q.sql: query Q: 'fixup: once' needs a :many query, not :one",
        ),
        (
            "-- name: Q :many\n-- fixup: once total\nSELECT id, 1 AS total FROM t;\n",
            "'fixup: once total' must name the first result columns, in order (they are id)",
        ),
        (
            "-- name: Q :many\n-- fixup: once total\nSELECT 1 AS total FROM t;\n",
            "'fixup: once' leaves no columns for the rows",
        ),
        (
            "-- name: Q :many\n-- fixup: once\nSELECT 1 AS total, id FROM t;\n",
            "'fixup: once' needs column names: once a, b",
        ),
    ],
)
def test_a_bad_once_directive_fails_naming_it(tmp_path: Path, query: str, expected: str) -> None:
    """`-- fixup: once a, b` changes the function's result: a typo or a misfit fails the
    generation, named, never a silently different or missing function."""
    message = generate_fails(
        tmp_path, query + "\n-- name: Ok :one\nSELECT name FROM t WHERE id = @id;\n"
    )
    assert expected in message


@pytest.mark.parametrize(
    ("directive", "expected"),
    [
        ("sort nick, keyset id", "query Q: sort key 'nick' is not a column of the result"),
        ("sort name upward, keyset id", "query Q: unknown direction word 'upward' for sort key"),
        ("sort name, keyset", "query Q: keyset paging needs a unique tie-breaker"),
        ("sort id, keyset name", "query Q: tie-breaker 'name' is not a unique column of t"),
    ],
)
def test_a_bad_sort_directive_fails_naming_it_and_the_query(
    tmp_path: Path, directive: str, expected: str
) -> None:
    """`-- fixup: sort` writes a statement per key and direction: a key the result lacks, a
    direction word it does not know or a tie-breaker that does not tell rows apart fails
    the generation, named (nothing is written)."""
    query = f"-- name: Q :many\n-- fixup: {directive}\nSELECT id, name FROM t LIMIT @n;\n"
    assert expected in generate_fails(tmp_path, query)
