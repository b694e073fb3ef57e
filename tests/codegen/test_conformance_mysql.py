"""Conformance on MariaDB: the types step (charsets, LIMIT ?, `any` parameters, a schema
creating a second database) and the nullability rules that apply there (LEFT JOIN,
IFNULL/COALESCE, aggregates, strict functions), generated, type-checked and called on rows
holding NULLs. The project is tests/codegen/conformance/mysql."""

from __future__ import annotations

import inspect
import json
import shutil
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.codegen.conformance import live, support
from tests.codegen.conformance.live_mysql import live_run
from tests.codegen.test_runtime_mysql import connect, sql
from tests.servers import DatabaseFactory, Servers
from tools import sqlc
from tools.local.dbadmin import mysql_connect
from tools.sqlc_types import apply_schema

CASE = Path(__file__).parent / "conformance" / "mysql"
SIDE_DATABASE = "fixup_conformance_side"


@pytest.fixture(scope="module")
def out(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Path:
    into = tmp_path_factory.mktemp("conformance_mysql")
    env = {"TEST_MYSQL_DSN": servers.mysql_dsn}
    return support.generate(CASE, into, "conformance_mysql_out", env)


@pytest.fixture(scope="module")
def q(out: Path) -> ModuleType:
    return support.import_generated(out, "q")


@pytest.fixture(scope="module")
def dsn(databases: DatabaseFactory) -> str:
    created = databases.create("cf_my", "mysql")
    apply_schema(created, [CASE / "schema" / "0001_init.sql"])  # not the side database
    return created


@pytest.fixture(scope="module")
async def module_conn(dsn: str) -> AsyncIterator[Any]:
    conn = await connect(dsn)
    yield conn
    conn.close()


@pytest.fixture
async def conn(module_conn: Any) -> Any:
    await sql(module_conn, "DELETE FROM comments")
    await sql(module_conn, "DELETE FROM posts")
    return module_conn


async def new_post(q: ModuleType, conn: Any, **kw: Any) -> int:
    args: dict[str, Any] = {
        "title": "t",
        "body": None,
        "price": None,
        "doc": None,
        "flag": False,
        **kw,
    }
    post_id: int = await q.create_post(conn, **args)
    return post_id


def test_generated_code_passes_mypy_strict(out: Path) -> None:
    result = support.mypy_strict(out)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_types_step_drops_the_database_its_schema_creates(out: Path, servers: Servers) -> None:
    with mysql_connect(servers.mysql_dsn) as my, my.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE %s", (SIDE_DATABASE,))
        assert cur.fetchall() == ()


async def test_charset_decides_str_or_bytes(q: ModuleType, conn: Any) -> None:
    assert support.hints(q.TextExpressionsRow) == {
        "line": "str | None",
        "shout": "str | None",
        "a": "str | None",
        "raw": "bytes",
    }
    assert str(inspect.signature(q.all_titles).return_annotation) == "str | None"
    full = await new_post(q, conn, title="T", body="b", doc={"a": [1]})
    row = await q.text_expressions(conn, id=full)
    assert (row.line, row.shout, row.a, row.raw) == ("T: b", "B", "[1]", b"T")
    empty = await new_post(q, conn, title="E")
    row = await q.text_expressions(conn, id=empty)
    assert (row.line, row.shout, row.a, row.raw) == (None, None, None, b"E")
    assert await q.all_titles(conn) == "T,E"


async def test_limit_parameters_keep_the_servers_decimal(q: ModuleType, conn: Any) -> None:
    assert support.hints(q.PricesPageRow) == {"id": "int", "doubled": "Decimal | None"}
    await new_post(q, conn, price=Decimal("1.25"))
    second = await new_post(q, conn)
    third = await new_post(q, conn, price=Decimal("3.00"))
    rows = await q.prices_page(conn, limit=2, offset=1)
    assert [(r.id, r.doubled) for r in rows] == [(second, None), (third, Decimal("6.00"))]


async def test_any_parameters_take_the_compared_columns_type(q: ModuleType, conn: Any) -> None:
    params = {n: str(p.annotation) for n, p in inspect.signature(q.cheaper_than).parameters.items()}
    assert params == {"conn": "MyConn", "p1": "Decimal | None", "concat": "str"}
    cheap = await new_post(q, conn, title="a cheap one", price=Decimal("2.00"))
    await new_post(q, conn, title="a dear one", price=Decimal("20.00"))
    assert await q.cheaper_than(conn, p1=Decimal("1.50"), concat="cheap") == [cheap]


async def test_left_join_columns_are_nullable(q: ModuleType, conn: Any) -> None:
    assert support.hints(q.PostsWithCommentsRow) == {"id": "int", "note": "str | None"}
    post = await new_post(q, conn)
    lonely = await new_post(q, conn)
    await q.create_comment(conn, post_id=post, note="hi")
    rows = await q.posts_with_comments(conn)
    assert [(r.id, r.note) for r in rows] == [(post, "hi"), (lonely, None)]


async def test_ifnull_and_coalesce_are_never_null(q: ModuleType, conn: Any) -> None:
    assert support.hints(q.DefaultsRow) == {
        "id": "int",
        "body_or_empty": "str",
        "price_or_zero": "Decimal",
        "body": "str | None",
        "shout": "str | None",
    }
    post = await new_post(q, conn)
    rows = await q.defaults(conn)
    assert [(r.id, r.body_or_empty, r.price_or_zero, r.body, r.shout) for r in rows] == [
        (post, "", Decimal("0.00"), None, None)
    ]


async def test_aggregates_are_null_on_an_empty_set(q: ModuleType, conn: Any) -> None:
    assert support.hints(q.TotalsRow) == {
        "n": "int",
        "top": "Decimal | None",
        "total": "Decimal | None",
        "mean": "Decimal | None",
    }
    empty = await q.totals(conn)
    assert (empty.n, empty.top, empty.total, empty.mean) == (0, None, None, None)
    await new_post(q, conn, price=Decimal("1.00"))
    await new_post(q, conn, price=Decimal("2.00"))
    row = await q.totals(conn)
    assert (row.n, row.top, row.total, row.mean) == (
        2,
        Decimal("2.00"),
        Decimal("3.00"),
        Decimal("1.500000"),
    )


async def test_division_by_zero_is_null_on_mariadb(q: ModuleType, conn: Any) -> None:
    """Unlike PostgreSQL (an error), MariaDB returns NULL for x / 0, x DIV 0, x % 0."""
    assert support.hints(q.RatiosRow) == {
        "id": "int",
        "per_flag": "Decimal | None",
        "whole": "int | None",
        "rest": "int | None",
        "modulo": "int | None",
        "half": "Decimal",
        "third": "int",
    }
    zero = await new_post(q, conn, flag=False)
    one = await new_post(q, conn, flag=True)
    rows = await q.ratios(conn)
    assert [(r.id, r.per_flag, r.whole, r.rest, r.modulo) for r in rows] == [
        (zero, None, None, None, None),
        (one, Decimal(one), one, 0, 0),
    ]


def test_two_types_runs_at_once_do_not_collide(
    servers: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both schemas create the same side database: the runs take turns, both succeed."""
    monkeypatch.setenv("TEST_MYSQL_DSN", servers.mysql_dsn)
    copies = []
    for name in ("one", "two"):
        shutil.copytree(CASE, tmp_path / name)
        config = tmp_path / name / "sqlc.yaml"
        config.write_text(
            config.read_text().replace("../../../../codegen", str(support.ROOT / "codegen"))
        )
        copies.append(str(tmp_path / name))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(sqlc.types, copies))
    for copy in copies:
        lock = json.loads((Path(copy) / "types.lock.json").read_text())
        assert lock["queries"]["PricesPage"]["columns"] == ["bigint", "decimal"]
    with mysql_connect(servers.mysql_dsn) as my, my.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE %s", (SIDE_DATABASE,))
        assert cur.fetchall() == ()


async def test_the_live_run_finds_no_lie(q: ModuleType, databases: DatabaseFactory) -> None:
    """The live conformance run (tests/codegen/conformance/live.py) on this project (not
    the side database its schema creates)."""
    project = live.Project(q.__package__ or "", ["q"], [CASE / "schema" / "0001_init.sql"])
    dsn = databases.create("cf_my_live", "mysql")
    apply_schema(dsn, project.schema)
    lies = await live_run(dsn, project)
    assert not lies, live.report(lies)
