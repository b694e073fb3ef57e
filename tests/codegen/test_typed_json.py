"""Typed JSON columns: an override with `json: true` maps a jsonb/json column (and the
parameters that write it) to a model type — a msgspec Struct, a dataclass, a TypedDict, a
pydantic model — decoded on read and encoded on write, on PostgreSQL (asyncpg) and MariaDB
(aiomysql); a document that does not fit is a JSONColumnError naming the column."""

from __future__ import annotations

import asyncio
import importlib
import os
import textwrap
import typing
from pathlib import Path
from typing import Any

import pytest
from sqlc_fixup_runtime.json_columns import JSONColumnError

from codegen.errors import CodegenError
from codegen.pytypes import parse_overrides
from tests import pg
from tests.codegen.test_examples import _modules, project
from tests.codegen.test_runtime_mysql import connect as mysql_connect
from tests.servers import Servers
from tools import sqlc
from tools.local.databases import with_database
from tools.local.dbadmin import create_database, drop_database

TYPES = """
from dataclasses import dataclass
from typing import TypedDict

import msgspec
import pydantic


class Address(msgspec.Struct):
    street: str
    number: int


@dataclass
class Office:
    floor: int
    desk: str | None = None


class Tags(TypedDict):
    names: list[str]


class Meta(pydantic.BaseModel):
    score: float
"""
SCHEMA = """
CREATE TABLE place (
  id int PRIMARY KEY, home jsonb NOT NULL, office json, tags jsonb, meta jsonb
);
"""
QUERIES = {
    "places.sql": """
    -- name: PutPlace :one
    INSERT INTO place (id, home, office, tags, meta) VALUES ($1, $2, $3, $4, $5) RETURNING *;

    -- name: GetPlace :one
    SELECT home, office FROM place WHERE id = $1;
    """
}
OVERRIDES = [
    ("place.home", "Address"),
    ("place.office", "Office"),
    ("place.tags", "Tags"),
    ("place.meta", "Meta"),
]


def overrides(table: str = "place") -> str:
    items = ", ".join(
        f"{{column: {column.replace('place', table)}, py_type: {cls}, "
        f'import: "from jsontypes import {cls}", json: true}}'
        for column, cls in OVERRIDES
    )
    return f", overrides: [{items}]"


@pytest.fixture
def jsontypes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    (tmp_path / "jsontypes.py").write_text(TYPES)
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module("jsontypes")  # the user's module the overrides name


def test_typed_json_round_trips_on_postgresql(
    tmp_path: Path, servers: Servers, jsontypes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PG_DSN", servers.pg_dsn)
    (tmp_path / "pg").mkdir()
    root = project(tmp_path / "pg", "postgresql", SCHEMA, QUERIES, overrides())
    sqlc.generate(str(root))
    places = next(m for m in _modules(root / "out") if m.__name__.endswith(".places"))
    t = jsontypes
    dsn = with_database(servers.pg_dsn, f"fixup_typedjson_{os.getpid()}")
    create_database(dsn)

    async def run() -> tuple[Any, Any]:
        async with pg.connected(dsn) as conn:
            await conn.execute(textwrap.dedent(SCHEMA))
            put = await places.put_place(
                conn, id=1, home=t.Address("Main", 3), office=t.Office(2),
                tags=t.Tags(names=["a"]), meta=t.Meta(score=0.5),
            )  # fmt: skip
            got = await places.get_place(conn, id=1)
            raw = await conn.fetchval("SELECT home::text FROM place WHERE id = 1")
            await conn.execute("INSERT INTO place (id, home) VALUES (2, '{\"street\": 7}')")
            with pytest.raises(JSONColumnError, match=r"column place\.home: the JSON is not a"):
                await places.get_place(conn, id=2)
            return (put, got, raw)

    try:
        put, got, raw = asyncio.run(run())
    finally:
        drop_database(dsn)
    assert (put.home, put.office, put.tags, put.meta) == (
        t.Address("Main", 3),
        t.Office(2),
        {"names": ["a"]},
        t.Meta(score=0.5),
    )
    assert (got.home, got.office) == (t.Address("Main", 3), t.Office(2))
    assert raw == '{"number": 3, "street": "Main"}'  # stored as JSON, not as text
    hints = typing.get_type_hints(places.GetPlaceRow)
    assert (hints["home"], hints["office"]) == (t.Address, t.Office | None)


def test_typed_json_round_trips_on_mariadb(
    tmp_path: Path, servers: Servers, jsontypes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_MYSQL_DSN", servers.mysql_dsn)
    schema = "CREATE TABLE spot (id int PRIMARY KEY, home json NOT NULL, office json);\n"
    queries = {
        "spots.sql": """
        -- name: PutSpot :exec
        INSERT INTO spot (id, home, office) VALUES (?, ?, ?);

        -- name: GetSpot :one
        SELECT home, office FROM spot WHERE id = ?;
        """
    }
    (tmp_path / "my").mkdir()
    root = project(tmp_path / "my", "mysql", schema, queries, overrides("spot"))
    sqlc.generate(str(root))
    spots = next(m for m in _modules(root / "out") if m.__name__.endswith(".spots"))
    t = jsontypes
    dsn = with_database(servers.mysql_dsn, f"fixup_typedjson_{os.getpid()}")
    create_database(dsn)

    async def run() -> Any:
        conn = await mysql_connect(dsn)
        try:
            async with conn.cursor() as cur:
                await cur.execute(schema)
            await spots.put_spot(conn, id=1, home=t.Address("Main", 3), office=None)
            return await spots.get_spot(conn, id=1)
        finally:
            conn.close()

    try:
        got = asyncio.run(run())
    finally:
        drop_database(dsn)
    assert (got.home, got.office) == (t.Address("Main", 3), None)


def test_a_json_flag_that_is_not_a_boolean_is_an_error_naming_the_override() -> None:
    with pytest.raises(CodegenError, match="json must be true or false"):
        parse_overrides([{"column": "place.home", "py_type": "Address", "json": "yes"}])
