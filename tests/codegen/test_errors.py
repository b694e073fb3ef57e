"""Bad input fails with a clear message, a non-zero exit, and no file written."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tools import sqlc

PLUGIN = Path(__file__).resolve().parents[2] / "codegen" / "bin" / "sqlc-gen-fixup"
SCHEMA = "CREATE TABLE t (id bigserial PRIMARY KEY, name text NOT NULL, doc tsvector);\n"


def project(tmp_path: Path, query: str, options: str = "{driver: asyncpg}") -> Path:
    (tmp_path / "schema.sql").write_text(SCHEMA)
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries" / "q.sql").write_text(textwrap.dedent(query).lstrip())
    (tmp_path / "sqlc.yaml").write_text(
        textwrap.dedent(f"""
        version: "2"
        plugins:
          - name: fixup
            process: {{cmd: {PLUGIN}, format: json}}
        sql:
          - engine: postgresql
            schema: [schema.sql]
            queries: queries
            codegen:
              - {{out: out, plugin: fixup, options: {options}}}
        """)
    )
    return tmp_path


def generate_fails(tmp_path: Path, query: str) -> str:
    root = project(tmp_path, query)
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


def test_unmappable_type_names_query_and_column(tmp_path: Path) -> None:
    message = generate_fails(tmp_path, "-- name: GetDoc :one\nSELECT doc FROM t WHERE id = $1;\n")
    assert "query GetDoc: column 'doc' has type 'tsvector' that the plugin cannot map" in message
    assert "override" in message


def test_an_override_maps_the_type(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "-- name: GetDoc :one\nSELECT doc FROM t WHERE id = $1;\n",
        options="{driver: asyncpg, overrides: [{db_type: tsvector, py_type: str}]}",
    )
    sqlc.run_sqlc(root)
    assert (
        "async def get_doc(conn: PgConn, *, id: int) -> str | None:"
        in (root / "out" / "q.py").read_text()
    )


def test_execlastid_needs_returning_on_postgres(tmp_path: Path) -> None:
    message = generate_fails(
        tmp_path, "-- name: Ins :execlastid\nINSERT INTO t (name) VALUES ($1);\n"
    )
    assert "query Ins: :execlastid on PostgreSQL needs a one-column RETURNING clause" in message


def test_driver_must_fit_engine(tmp_path: Path) -> None:
    root = project(tmp_path, "-- name: Q :many\nSELECT id FROM t;\n", options="{driver: aiomysql}")
    with pytest.raises(sqlc.SqlcError, match="driver 'aiomysql' does not fit engine 'postgresql'"):
        sqlc.run_sqlc(root)
    assert not (root / "out").exists()
