"""Issue 30's examples, each a minimal schema + query generated as users do (`make sqlc`:
types lock from the real server, then the plugin) and checked with `make sqlc-vet`'s
comparison against the server; plus `get_type_hints` on every generated function."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import os
import re
import sys
import textwrap
import typing
from pathlib import Path

import msgspec
import pytest

from tests import pg
from tests.codegen.project_support import write_sqlc_yaml
from tests.servers import Servers
from tools import sqlc
from tools.local.databases import with_database
from tools.local.dbadmin import create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]


def project(tmp: Path, engine: str, schema: str, queries: dict[str, str], extra: str = "") -> Path:
    (tmp / "queries").mkdir()
    (tmp / "schema.sql").write_text(textwrap.dedent(schema))
    for name, text in queries.items():
        (tmp / "queries" / name).write_text(textwrap.dedent(text).lstrip())
    driver = "asyncpg" if engine == "postgresql" else "aiomysql"
    write_sqlc_yaml(tmp, engine, f"{{driver: {driver}{extra}}}")
    return tmp


@pytest.fixture
def on_servers(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PG_DSN", servers.pg_dsn)
    monkeypatch.setenv("TEST_MYSQL_DSN", servers.mysql_dsn)


GADGETS = {
    "gadgets.sql": """
    -- name: GadgetById :one
    SELECT id, label FROM gadget WHERE id = $1;

    -- name: GadgetTypo :many
    SELECT id FROM gadget WHERE label = 42::int;
    """
}


@pytest.mark.usefixtures("on_servers")
def test_1_a_refused_query_is_named_and_nothing_generated(tmp_path: Path) -> None:
    schema = "CREATE TABLE gadget (id int PRIMARY KEY, label varchar(40) NOT NULL);\n"
    root = project(tmp_path, "postgresql", schema, GADGETS)
    with pytest.raises(sqlc.SqlcError, match=r"queries/gadgets.sql:4: query GadgetTypo: ") as info:
        sqlc.generate(str(root))
    assert "server says: operator does not exist" in str(info.value)
    assert not (root / "out").exists(), "nothing is dropped in silence: nothing is written"
    lock = json.loads((root / "types.lock.json").read_text())
    assert lock["queries"]["GadgetById"]["params"] == ["int4"]
    assert "GadgetTypo" in lock["refused"]
    with pytest.raises(sqlc.SqlcError, match="query GadgetTypo: server says: operator does not"):
        sqlc.check(str(root))
    assert sqlc.main(["generate", str(root)]) == 1


@pytest.mark.usefixtures("on_servers")
def test_1_mysql_a_refused_query_is_named_and_nothing_generated(tmp_path: Path) -> None:
    schema = "CREATE TABLE crate (id INT NOT NULL PRIMARY KEY, weight INT);\n"
    queries = {
        "crates.sql": """
        -- name: AllCrates :many
        SELECT id, weight FROM crate;

        -- name: CrateWeight :many
        SELECT id, crate_weight(id) AS w FROM crate;
        """
    }
    root = project(tmp_path, "mysql", schema, queries)
    with pytest.raises(sqlc.SqlcError) as info:
        sqlc.generate(str(root))
    assert (
        "queries/crates.sql:4: query CrateWeight: server says: (1305, 'FUNCTION crate_weight"
        in (str(info.value))
    )
    assert not (root / "out").exists()


SHELF = """
CREATE TABLE shelf (id bigint PRIMARY KEY, title text NOT NULL, subtitle text,
                    added_on timestamptz NOT NULL, room_id bigint,
                    path ltree, q lquery, t ltxtquery);
CREATE TABLE loan (id bigint PRIMARY KEY, shelf_id bigint NOT NULL REFERENCES shelf (id));
"""
SHELF_QUERIES = {
    "shelves.sql": """
    -- name: ShelfFormat :many
    SELECT id, format('%s: %s', title, subtitle) AS caption FROM shelf;

    -- name: ShelfWindow :many
    SELECT id, first_value(title) OVER (ORDER BY id) AS first_title,
           lead(title, 1, '-') OVER (ORDER BY id) AS next_title FROM shelf;

    -- name: ShelfLoaned :many
    SELECT id, id IN (SELECT l.shelf_id FROM loan l) AS loaned FROM shelf;

    -- name: ShelfPerRoom :many
    SELECT room_id, max(added_on) AS newest, array_agg(title) AS titles
    FROM shelf GROUP BY room_id;

    -- name: ShelvesInRooms :many
    SELECT id, room_id FROM shelf WHERE room_id IS NOT NULL;

    -- name: ShelvesMaybeInRooms :many
    SELECT id, room_id FROM shelf WHERE room_id IS NOT NULL OR id > 1;

    -- name: NewestEver :one
    SELECT max(added_on) AS newest FROM shelf;

    -- name: Queries :many
    SELECT q, t FROM shelf WHERE path ~ q;

    -- name: List :many
    SELECT id, title FROM shelf;

    -- name: Lock :one
    SELECT pg_advisory_lock($1);
    """
}


@pytest.mark.usefixtures("on_servers")
def test_2_5_7_8_postgresql_examples(tmp_path: Path) -> None:
    schema = "CREATE EXTENSION IF NOT EXISTS ltree;\n" + SHELF
    root = project(tmp_path, "postgresql", schema, SHELF_QUERIES)
    sqlc.generate(str(root))
    out = (root / "out" / "shelves.py").read_text()
    for line in [
        "    caption: str\n",
        "    first_title: str\n",
        "    next_title: str\n",
        "    loaned: bool\n",
        "    room_id: int | None\n    newest: datetime.datetime\n    titles: list[str]\n",
        "class ShelvesInRoomsRow:\n    id: int\n    room_id: int\n",
        "class ShelvesMaybeInRoomsRow:\n    id: int\n    room_id: int | None\n",
        "async def newest_ever(conn: PgConn) -> datetime.datetime | None:",
        "    q: str | None\n    t: str | None\n",
        "async def list_(conn: PgConn) -> list[ListRow]:",
        "async def lock(conn: PgConn, *, pg_advisory_lock: int) -> None:",
    ]:
        assert line in out, line
    sqlc.check(str(root))  # strict: no warning (lquery/ltxtquery mapped)
    sqlc.vet(str(root))  # every column agrees with the server's PREPARE
    assert_hints(root / "out")


@pytest.mark.usefixtures("on_servers")
def test_3_4_mysql_examples(tmp_path: Path) -> None:
    schema = "CREATE TABLE pair (id INT PRIMARY KEY, nick VARCHAR(20) NOT NULL, x INT, y INT);\n"
    queries = {
        "pairs.sql": """
        -- name: Totals :many
        SELECT total FROM (SELECT x + y AS total FROM pair) AS t;

        -- name: CteTotals :many
        WITH t AS (SELECT x + y AS total FROM pair) SELECT total FROM t;

        -- name: ByNick :many
        SELECT id FROM pair WHERE nick = sqlc.arg(nick) OR sqlc.arg(nick) = '';

        -- name: Above :many
        SELECT id FROM pair WHERE x > CAST(sqlc.arg(floor) AS SIGNED);

        -- name: AboveU :many
        SELECT id FROM pair WHERE x > CAST(sqlc.arg(floor) AS UNSIGNED);
        """
    }
    root = project(tmp_path, "mysql", schema, queries)
    sqlc.generate(str(root))
    out = (root / "out" / "pairs.py").read_text()
    for line in [
        "async def totals(conn: MyConn) -> list[int | None]:",
        "async def cte_totals(conn: MyConn) -> list[int | None]:",
        "async def by_nick(conn: MyConn, *, nick: str) -> list[int]:",
        "await cur.execute(BY_NICK, (nick, nick))",
        "async def above(conn: MyConn, *, floor: int) -> list[int]:",
        "async def above_u(conn: MyConn, *, floor: int) -> list[int]:",
    ]:
        assert line in out, line
    sqlc.check(str(root))
    sqlc.vet(str(root))
    assert_hints(root / "out")


def test_6_psql_meta_commands_are_stripped(tmp_path: Path, on_servers: None) -> None:
    schema = (
        "\\restrict abc123\n"
        + "CREATE TABLE gadget (id int PRIMARY KEY);\n"
        + "\\unrestrict abc123\n"
    )
    queries = {"g.sql": "-- name: One :one\nSELECT id FROM gadget WHERE id = $1;\n"}
    root = project(tmp_path, "postgresql", schema, queries)
    sqlc.generate(str(root))
    assert (
        "async def one(conn: PgConn, *, id: int) -> int | None:"
        in (root / "out" / "g.py").read_text()
    )


def test_9_a_file_sqlc_rejects_gets_a_hint_and_the_others_generate(
    tmp_path: Path, on_servers: None
) -> None:
    schema = "CREATE TABLE item (id bigint PRIMARY KEY, price numeric NOT NULL);\n"
    queries = {
        "items.sql": "-- name: Lowest :many\nSELECT id, least(price, $1) AS lowest FROM item;\n",
        "ok.sql": "-- name: ById :one\nSELECT id FROM item WHERE id = $1;\n",
    }
    root = project(tmp_path, "postgresql", schema, queries)
    with pytest.raises(sqlc.QueryFailures) as info:
        sqlc.generate(str(root))
    message = str(info.value)
    assert 'queries/items.sql:2: sqlc says: column "lowest" does not exist' in message
    assert "least(price, sqlc.arg(cap)::numeric)" in message
    assert (root / "out" / "ok.py").exists()
    assert not (root / "out" / "items.py").exists()
    with pytest.raises(sqlc.SqlcError, match=re.escape("least(price, sqlc.arg(cap)::numeric)")):
        sqlc.check(str(root))


def test_an_unknown_option_is_an_error_naming_it(tmp_path: Path) -> None:
    root = project(tmp_path, "postgresql", "CREATE TABLE t (id int);\n", {"q.sql": ""})
    config = root / "sqlc.yaml"
    config.write_text(
        config.read_text().replace("driver: asyncpg", "driver: asyncpg, typs_lock: x")
    )
    (root / "queries" / "q.sql").write_text("-- name: Q :many\nSELECT id FROM t;\n")
    with pytest.raises(
        sqlc.SqlcError,
        match=re.escape("unknown option 'typs_lock' in sqlc.yaml (did you mean 'types_lock'?)"),
    ):
        sqlc.run_sqlc(root)
    assert not (root / "out").exists()


def _modules(directory: Path) -> typing.Iterator[object]:
    """Every module of a generated package, imported under a unique name."""
    package = f"gen_{abs(hash(directory))}"
    init = importlib.util.spec_from_file_location(package, directory / "__init__.py")
    assert init is not None
    sys.modules[package] = importlib.util.module_from_spec(init)
    for file in sorted(directory.glob("*.py")):
        if file.name == "__init__.py":
            continue
        name = f"{package}.{file.stem}"
        spec = importlib.util.spec_from_file_location(name, file)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        yield module


def assert_hints(directory: Path) -> int:
    """typing.get_type_hints on every function and class of a generated package."""
    count = 0
    for module in _modules(directory):
        for value in vars(module).values():
            if (inspect.isfunction(value) or inspect.isclass(value)) and (
                value.__module__ == getattr(module, "__name__", None)
            ):
                typing.get_type_hints(value)
                count += 1
    return count


GENERATED = sorted(
    {p.parent for p in ROOT.glob("services/*/db/__init__.py")}
    | {ROOT / "tests/codegen/golden/pg", ROOT / "tests/codegen/golden/mysql"}
    | {ROOT / "tests/codegen/golden/psycopg", ROOT / "tests/codegen/golden/psycopg_sync"}
    | {ROOT / "tests/codegen/golden/pydantic", ROOT / "tests/codegen/golden/attrs"}
    | {ROOT / "tests/codegen/patch_pg/db"}
)


@pytest.mark.parametrize("directory", GENERATED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_generated_annotation_evaluates(directory: Path) -> None:
    assert assert_hints(directory) > 0


@pytest.mark.usefixtures("on_servers")
def test_45_a_parameter_typed_by_sqlc_is_prepared_with_it_an_untyped_one_refused(
    tmp_path: Path,
) -> None:
    schema = "CREATE TABLE lamp (id int PRIMARY KEY, label text NOT NULL, watts int);\n"
    queries = {
        "lamps.sql": """
        -- name: SetWatts :execrows
        UPDATE lamp SET watts = CASE WHEN sqlc.narg('watts') IS NULL THEN watts
                                     ELSE sqlc.narg('watts') END
        WHERE id = @id;

        -- name: LampsFlagged :many
        SELECT id FROM lamp WHERE @flag IS NULL;
        """
    }
    root = project(tmp_path, "postgresql", schema, queries)
    with pytest.raises(sqlc.SqlcError, match=r"query LampsFlagged: server says: could not"):
        sqlc.generate(str(root))
    lock = json.loads((root / "types.lock.json").read_text())
    assert lock["queries"]["SetWatts"]["casts"] == {"1": "int4"}
    assert lock["queries"]["SetWatts"]["params"] == ["int4", "int4"]
    assert "LampsFlagged" in lock["refused"]
    (root / "queries" / "lamps.sql").write_text(
        (root / "queries" / "lamps.sql").read_text().split("-- name: LampsFlagged")[0]
    )
    sqlc.generate(str(root))  # the refused query taken out: the rest generates
    generated = (root / "out" / "lamps.py").read_text()
    assert "CASE WHEN $1::int4 IS NULL THEN watts" in generated
    assert "async def set_watts(conn: PgConn, *, watts: int | None, id: int) -> int:" in generated
    assert "lamps_flagged" not in generated


@pytest.mark.usefixtures("on_servers")
def test_45_msgspec_structs_on_asyncpg_with_a_composite_type(
    tmp_path: Path, servers: Servers
) -> None:
    schema = """
    CREATE TYPE spot AS (x int, label text);
    CREATE TABLE marker (id int PRIMARY KEY, at spot NOT NULL, note text);
    """
    queries = {
        "markers.sql": """
        -- name: PutMarker :one
        INSERT INTO marker (id, at, note) VALUES ($1, $2, $3) RETURNING *;
        """
    }
    root = project(tmp_path, "postgresql", schema, queries, ", model_type: msgspec")
    sqlc.generate(str(root))
    assert "class Marker(msgspec.Struct):" in (root / "out" / "models.py").read_text()
    markers = next(m for m in _modules(root / "out") if m.__name__.endswith(".markers"))
    models: typing.Any = markers.models  # the module the generated code itself imported
    dsn = with_database(servers.pg_dsn, f"fixup_msgspec_{os.getpid()}")
    create_database(dsn)

    async def run() -> object:
        async with pg.connected(dsn) as conn:
            await conn.execute(textwrap.dedent(schema))
            return await markers.put_marker(conn, id=1, at=models.Spot(3, "x"), note=None)

    try:
        row = asyncio.run(run())
    finally:
        drop_database(dsn)
    assert row == models.Marker(1, models.Spot(3, "x"), None)
    assert isinstance(row.at, msgspec.Struct)
    assert typing.get_type_hints(models.Marker)["at"] is models.Spot
    assert typing.get_type_hints(markers.put_marker)["return"] == models.Marker | None
