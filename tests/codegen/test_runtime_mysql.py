"""Every generated function of tests/codegen/golden/mysql, run against a real MariaDB/MySQL.

One throwaway database per module (schema.sql applied once); every test starts from empty
tables, creates the rows it needs and asserts exact values and exact Python types.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomysql
import pymysql
import pytest

from lib.db.runtime import ExecResult, expand_slices
from tests.codegen.golden.mysql import gadgets as q
from tests.codegen.golden.mysql.models import Gadget, GadgetsKind, Part
from tests.codegen.runtime_support import T0, collect
from tests.servers import DatabaseFactory
from tools.sqlc_types import apply_schema

SCHEMA = Path(__file__).parent / "mysql" / "schema.sql"
Conn = Any  # aiomysql.Connection


async def connect(dsn: str) -> Conn:
    parts = urlsplit(dsn)
    conn = await aiomysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        db=parts.path.lstrip("/"),
        autocommit=True,
        charset="utf8mb4",
        init_command="SET time_zone = '+00:00'",
    )
    return conn


@pytest.fixture(scope="module")
def dsn(databases: DatabaseFactory) -> str:
    created = databases.create("cg_my", "mysql")
    apply_schema(created, [SCHEMA])
    return created


@pytest.fixture(scope="module")
async def module_conn(dsn: str) -> AsyncIterator[Conn]:
    conn = await connect(dsn)
    yield conn
    conn.close()


async def sql(conn: Conn, query: str, *args: Any) -> list[tuple[Any, ...]]:
    async with conn.cursor() as cur:
        await cur.execute(query, args)
        return list(await cur.fetchall())


@pytest.fixture
async def conn(module_conn: Conn) -> Conn:
    await sql(module_conn, "DELETE FROM parts")
    await sql(module_conn, "DELETE FROM gadgets")
    return module_conn


NULLS: dict[str, Any] = {
    "code": None,
    "notes": None,
    "flags": None,
    "tiny": None,
    "qty": None,
    "big": None,
    "price": None,
    "ratio": None,
    "meta": None,
    "made": None,
    "mask": None,
    "blobby": None,
    "born": None,
    "alarm": None,
    "seen_at": None,
}
FULL: dict[str, Any] = {
    "name": "Widget ü",
    "code": "AB12",
    "notes": "line1\nline2 'quoted' %s",
    "kind": GadgetsKind.SO_SO,
    "flags": frozenset({"red", "blue"}),
    "active": False,
    "tiny": -128,
    "qty": 3_000_000_000,  # INT UNSIGNED above 2**31
    "big": -(2**63),
    "price": Decimal("1234.56"),
    "ratio": 0.125,
    "meta": {"k": [1, 2.5, None, True, {"deep": "x"}], "e": {}},
    "made": 2024,
    # bytes parameters (mask, blobby): PyMySQL pinned below 1.2 (aiomysql#1080)
    "mask": b"\xa5",
    "blobby": b"\x00\xffBLOB\x00",
    "born": date(1990, 2, 28),
    "alarm": timedelta(hours=6, minutes=45, seconds=30),
    "seen_at": T0,
}
TYPES: dict[str, type] = {
    "id": int,
    "name": str,
    "code": str,
    "notes": str,
    "kind": GadgetsKind,
    "flags": frozenset,
    "active": bool,
    "tiny": int,
    "qty": int,
    "big": int,
    "price": Decimal,
    "ratio": float,
    "meta": dict,
    "made": int,
    "mask": bytes,
    "blobby": bytes,
    "born": date,
    "alarm": timedelta,
    "seen_at": datetime,
    "created_at": datetime,
}


async def new_gadget(conn: Conn, **kw: Any) -> Gadget:
    args: dict[str, Any] = {"name": "g", "kind": GadgetsKind.TOOL, "active": True, **NULLS}
    new_id = await q.create_gadget(conn, **{**args, **kw})
    assert isinstance(new_id, int)
    got = await q.get_gadget(conn, id=new_id)
    assert isinstance(got, Gadget)
    return got


async def new_part(conn: Conn, gadget: Gadget, label: str) -> Part:
    result = await q.insert_part(conn, gadget_id=gadget.id, label=label)
    assert result.rows_affected == 1
    assert result.last_insert_id is not None
    return Part(result.last_insert_id, gadget.id, label)


# --- :execlastid / :one / type round trips --------------------------------------------


@pytest.mark.parametrize("column", list(TYPES))
async def test_round_trip_every_column(conn: Conn, column: str) -> None:
    got = await new_gadget(conn, **FULL)
    value: Any = getattr(got, column)
    assert type(value) is TYPES[column], (column, type(value))
    if column in FULL:
        assert value == FULL[column]
    if column in ("seen_at", "created_at"):
        assert getattr(got, column).tzinfo is UTC


async def test_round_trip_value_details(conn: Conn) -> None:
    got = await new_gadget(conn, **FULL)
    assert str(got.price) == "1234.56"
    assert got.kind is GadgetsKind.SO_SO
    assert got.kind.value == "so-so"
    assert got.flags == frozenset({"red", "blue"})
    assert got.active is False
    assert got.qty == 3_000_000_000 > 2**31
    assert got.mask == bytes([0b10100101])
    assert abs(datetime.now(UTC) - got.created_at) < timedelta(minutes=5)
    stored = await sql(
        conn,
        "SELECT flags, kind, qty, mask + 0, made, seen_at FROM gadgets WHERE id = %s",
        got.id,
    )
    assert stored == [("red,blue", "so-so", 3_000_000_000, 165, 2024, T0.replace(tzinfo=None))]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("flags", frozenset()),
        ("flags", frozenset({"red", "green", "blue"})),
        ("kind", GadgetsKind.TOY),
        ("active", True),
        ("qty", 2**32 - 1),
        ("tiny", 127),
        ("big", 2**63 - 1),
        ("meta", [1, "two", {"three": [3]}]),
        ("meta", "just a string"),
        ("made", 1901),
        ("mask", b"\x00"),
        ("mask", b"\xff"),
        ("alarm", timedelta(hours=-838, minutes=-59, seconds=-59)),
        ("alarm", timedelta(hours=100, microseconds=0)),
        ("price", Decimal("-0.01")),
        ("notes", "100%"),
    ],
)
async def test_round_trip_more_values(conn: Conn, column: str, value: Any) -> None:
    got = await new_gadget(conn, **{column: value})
    assert getattr(got, column) == value
    assert type(getattr(got, column)) is type(value)


async def test_seen_at_other_zone_stored_as_utc(conn: Conn) -> None:
    plus2 = datetime(2026, 6, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    got = await new_gadget(conn, seen_at=plus2)
    assert got.seen_at == plus2
    assert got.seen_at is not None
    assert got.seen_at.tzinfo is UTC
    assert got.seen_at.hour == 12
    stored = await sql(conn, "SELECT seen_at FROM gadgets WHERE id = %s", got.id)
    assert stored == [(datetime(2026, 6, 1, 12, 0, 0, 5),)]


async def test_naive_datetime_refused(conn: Conn) -> None:
    with pytest.raises(ValueError, match="naive"):
        await new_gadget(conn, seen_at=datetime(2026, 1, 1))


async def test_nulls_stored_as_null(conn: Conn) -> None:
    got = await new_gadget(conn, name="nul")
    for column in NULLS:
        assert getattr(got, column) is None, column
    checks = " + ".join(f"({c} IS NULL)" for c in NULLS)
    assert await sql(conn, f"SELECT {checks} FROM gadgets WHERE id = %s", got.id) == [(len(NULLS),)]
    assert (got.kind, got.active) == (GadgetsKind.TOOL, True)


async def test_defaults(conn: Conn) -> None:
    await sql(conn, "INSERT INTO gadgets (name) VALUES ('bare')")
    (new_id,) = (await sql(conn, "SELECT LAST_INSERT_ID()"))[0]
    got = await q.get_gadget(conn, id=new_id)
    assert got is not None
    assert (got.kind, got.active) == (GadgetsKind.TOOL, True)
    assert type(got.kind) is GadgetsKind
    assert got.created_at.tzinfo is UTC
    assert abs(datetime.now(UTC) - got.created_at) < timedelta(minutes=5)


async def test_create_gadget_lastid(conn: Conn) -> None:
    first = await q.create_gadget(conn, name="a", kind=GadgetsKind.TOOL, active=True, **NULLS)
    second = await q.create_gadget(conn, name="b", kind=GadgetsKind.TOY, active=True, **NULLS)
    assert type(first) is int
    assert second == first + 1
    assert (await q.get_gadget(conn, id=second)).name == "b"  # type: ignore[union-attr]


async def test_page_reads_the_total_once(conn: Conn) -> None:
    assert await q.page_gadgets(conn, limit=2) is None  # no row carries the total
    for name in ("a", "b", "c"):
        await new_gadget(conn, name=name, kind=GadgetsKind.TOY)
    page = await q.page_gadgets(conn, limit=2)
    expected = [q.PageGadgetsRow("a", GadgetsKind.TOY), q.PageGadgetsRow("b", GadgetsKind.TOY)]
    assert page == q.PageGadgetsPage(total=3, rows=expected)
    assert page is not None
    assert type(page.rows[0].kind) is GadgetsKind


# --- :many with sqlc.slice, and the streaming variants -------------------------------


async def test_list_gadgets_by_ids_slice(conn: Conn) -> None:
    a = await new_gadget(conn, name="a", **{k: v for k, v in FULL.items() if k != "name"})
    b = await new_gadget(conn, name="b")
    c = await new_gadget(conn, name="c")
    d = await new_gadget(conn, name="d", active=False)
    assert await q.list_gadgets_by_ids(conn, ids=[c.id, b.id, 999999], active=True) == [b, c]
    assert await q.list_gadgets_by_ids(conn, ids=[a.id, d.id, b.id], active=False) == [a, d]
    assert await q.list_gadgets_by_ids(conn, ids=[b.id], active=True) == [b]
    assert await q.list_gadgets_by_ids(conn, ids=[], active=True) == []
    assert await q.list_gadgets_by_ids(conn, ids=[], active=False) == []
    got = await q.list_gadgets_by_ids(conn, ids=[a.id], active=False)
    assert type(got[0]) is Gadget
    assert got[0].meta == FULL["meta"]
    assert got[0].flags == FULL["flags"]
    assert await collect(q.iter_list_gadgets_by_ids(conn, ids=[d.id, a.id], active=False)) == [
        a,
        d,
    ]
    assert await collect(q.iter_list_gadgets_by_ids(conn, ids=[], active=True)) == []


async def test_gadgets_with_parts_left_join(conn: Conn) -> None:
    a = await new_gadget(conn, name="A")
    b = await new_gadget(conn, name="B")
    await new_part(conn, a, "p1")
    await new_part(conn, a, "p2")
    expected = [
        q.GadgetsWithPartsRow(a.id, "A", "p1"),
        q.GadgetsWithPartsRow(a.id, "A", "p2"),
        q.GadgetsWithPartsRow(b.id, "B", None),
    ]
    assert await q.gadgets_with_parts(conn) == expected
    assert await collect(q.iter_gadgets_with_parts(conn)) == expected


async def test_parts_with_gadget_embed(conn: Conn) -> None:
    a = await new_gadget(conn, **FULL)
    b = await new_gadget(conn, name="B", kind=GadgetsKind.TOY)
    p1 = await new_part(conn, a, "p1")
    p2 = await new_part(conn, b, "p2")
    p3 = await new_part(conn, a, "p3")
    expected = [
        q.PartsWithGadgetRow(p1, a),
        q.PartsWithGadgetRow(p2, b),
        q.PartsWithGadgetRow(p3, a),
    ]
    got = await q.parts_with_gadget(conn)
    assert got == expected
    for row in got:
        assert type(row.parts) is Part
        assert type(row.gadgets) is Gadget
        assert type(row.gadgets.kind) is GadgetsKind
        assert type(row.gadgets.active) is bool
    assert got[0].gadgets.seen_at == T0
    assert got[0].gadgets.flags == FULL["flags"]
    assert [f.name for f in fields(got[0])] == ["parts", "gadgets"]
    assert await collect(q.iter_parts_with_gadget(conn)) == expected


async def test_streaming_stops_early_and_connection_stays_usable(conn: Conn) -> None:
    for i in range(50):
        await new_gadget(conn, name=f"s{i}")
    seen = []
    # aclosing: without it the generator (and its SSCursor) is only finalised later, and the
    # next query on the connection warns "Previous unbuffered result was left incomplete".
    # GAP: iter_* are annotated AsyncIterator (no aclose), hence the ignore for mypy.
    stream = q.iter_gadgets_with_parts(conn)
    async with contextlib.aclosing(stream) as rows:
        async for row in rows:
            seen.append(row.name)
            if len(seen) == 3:
                break
    assert seen == ["s0", "s1", "s2"]
    assert len(await q.gadgets_with_parts(conn)) == 50


async def test_gadgets_named_like_literal_percent(conn: Conn) -> None:
    assert "'100%%'" in q.GADGETS_NAMED_LIKE
    await new_gadget(conn, name="alpha")
    await new_gadget(conn, name="beta", notes="100%")
    await new_gadget(conn, name="gamma", notes="100")
    await new_gadget(conn, name="alphabet")
    await new_gadget(conn, name="50% off")
    assert await q.gadgets_named_like(conn, pattern="alpha%") == ["alpha", "beta", "alphabet"]
    assert await q.gadgets_named_like(conn, pattern="nothing") == ["beta"]
    assert await q.gadgets_named_like(conn, pattern="%\\%%") == ["beta", "50% off"]
    assert await collect(q.iter_gadgets_named_like(conn, pattern="gam%")) == ["beta", "gamma"]


# --- :exec / :execrows / :execresult -------------------------------------------------


async def test_rename_gadget_exec(conn: Conn) -> None:
    a = await new_gadget(conn, name="Old")
    other = await new_gadget(conn, name="Other")
    await q.rename_gadget(conn, name="New", id=a.id)
    await q.rename_gadget(conn, name="Nobody", id=999999)
    assert (await q.get_gadget(conn, id=a.id)).name == "New"  # type: ignore[union-attr]
    assert (await q.get_gadget(conn, id=other.id)).name == "Other"  # type: ignore[union-attr]


async def test_set_notes_execrows(conn: Conn) -> None:
    qtys = [1, 5, 3_000_000_000, None]
    made = [await new_gadget(conn, name=f"n{i}", qty=x, notes="old") for i, x in enumerate(qtys)]
    assert await q.set_notes(conn, notes="many", min_qty=5) == 2
    assert await q.set_notes(conn, notes=None, min_qty=2**31) == 1
    assert await q.set_notes(conn, notes="x", min_qty=2**32) == 0
    assert await q.set_notes(conn, notes="x", min_qty=None) == 0
    # MySQL counts changed rows only: writing the same value again affects 0 rows.
    assert await q.set_notes(conn, notes="many", min_qty=5) == 1
    notes = [(await q.get_gadget(conn, id=g.id)).notes for g in made]  # type: ignore[union-attr]
    assert notes == ["old", "many", "many", "old"]
    await q.set_notes(conn, notes=None, min_qty=2**31)
    assert await sql(conn, "SELECT notes IS NULL FROM gadgets WHERE id = %s", made[2].id) == [(1,)]


async def test_delete_gadget_execresult(conn: Conn) -> None:
    g = await new_gadget(conn)
    result = await q.delete_gadget(conn, id=g.id)
    assert isinstance(result, ExecResult)
    assert result == ExecResult(rows_affected=1, last_insert_id=None)
    assert await q.delete_gadget(conn, id=g.id) == ExecResult(0, None)
    assert await q.get_gadget(conn, id=g.id) is None


async def test_insert_part_execresult(conn: Conn) -> None:
    g = await new_gadget(conn)
    first = await q.insert_part(conn, gadget_id=g.id, label="x")
    second = await q.insert_part(conn, gadget_id=g.id, label="y")
    assert isinstance(first, ExecResult)
    assert first.rows_affected == 1
    assert type(first.last_insert_id) is int
    assert second == ExecResult(1, first.last_insert_id + 1)
    assert await sql(conn, "SELECT id, label FROM parts ORDER BY id") == [
        (first.last_insert_id, "x"),
        (second.last_insert_id, "y"),
    ]
    with pytest.raises(pymysql.IntegrityError):
        await q.insert_part(conn, gadget_id=999999, label="orphan")


# --- :copyfrom ----------------------------------------------------------------------

N_COPY = 10_000
KINDS = list(GadgetsKind)


def copy_item(i: int) -> q.CopyGadgetsParams:
    return q.CopyGadgetsParams(
        name=f"bulk{i}",
        qty=None if i % 10 == 0 else i % 100 + 2**31,
        price=None if i % 7 == 0 else Decimal(i) / 100,
        kind=KINDS[i % 3],
    )


async def test_copy_gadgets_10000(conn: Conn) -> None:
    items = [copy_item(i) for i in range(N_COPY)]
    assert await q.copy_gadgets(conn, (item for item in items)) == N_COPY
    assert await sql(conn, "SELECT count(*) FROM gadgets") == [(N_COPY,)]

    for kind in GadgetsKind:
        mine = [i for i in items if i.kind is kind]
        qtys = [i.qty for i in mine if i.qty is not None]
        prices = [i.price for i in mine if i.price is not None]
        stats = await q.gadget_stats(conn, kind=kind)
        assert stats is not None
        assert stats.total == len(mine)
        assert (stats.min_qty, stats.max_qty) == (min(qtys), max(qtys))
        assert stats.max_qty_or_zero == max(qtys)
        assert stats.avg_qty is not None
        assert abs(stats.avg_qty - Decimal(sum(qtys)) / len(qtys)) < Decimal("0.0001")
        assert (stats.min_price, stats.max_price) == (min(prices), max(prices))
        assert stats.avg_price is not None
        assert abs(stats.avg_price - sum(prices, Decimal(0)) / len(prices)) < Decimal("0.0001")
    assert sum(1 for i in items if i.kind is GadgetsKind.SO_SO) == 3333

    rows = await sql(conn, "SELECT id FROM gadgets WHERE name IN ('bulk0', 'bulk3') ORDER BY id")
    g0, g3 = [await q.get_gadget(conn, id=r[0]) for r in rows]
    assert g0 is not None
    assert g3 is not None
    assert (g3.name, g3.qty, g3.price, g3.kind) == ("bulk3", 3 + 2**31, Decimal("0.03"), "tool")
    assert type(g3.kind) is GadgetsKind
    assert type(g3.price) is Decimal
    assert (g0.qty, g0.price, g0.active, g0.flags) == (None, None, True, None)
    ids = [r[0] for r in await sql(conn, "SELECT id FROM gadgets")]
    streamed = 0
    async for row in q.iter_list_gadgets_by_ids(conn, ids=ids, active=True):
        assert type(row.kind) is GadgetsKind
        streamed += 1
    assert streamed == N_COPY
    assert len(await q.list_gadgets_by_ids(conn, ids=ids[:5000], active=True)) == 5000


async def test_copy_gadgets_empty(conn: Conn) -> None:
    assert await q.copy_gadgets(conn, []) == 0  # the cursor's rowcount, -1, is not passed on
    assert await sql(conn, "SELECT count(*) FROM gadgets") == [(0,)]


# --- :batchexec / :batchone / :batchmany ---------------------------------------------


async def test_bump_qty_batchexec(conn: Conn) -> None:
    a = await new_gadget(conn, qty=10)
    b = await new_gadget(conn, qty=2**32 - 2)
    c = await new_gadget(conn, qty=None)
    params = [q.BumpQtyParams(i) for i in (a.id, a.id, b.id, c.id, 999999)]
    await q.bump_qty(conn, params)
    qtys = [(await q.get_gadget(conn, id=g.id)).qty for g in (a, b, c)]  # type: ignore[union-attr]
    assert qtys == [12, 2**32 - 1, None]
    await q.bump_qty(conn, [])


async def test_get_gadgets_batch_batchone(conn: Conn) -> None:
    a = await new_gadget(conn, name="A")
    b = await new_gadget(conn, name="B")
    ids = [b.id, 999999, a.id]
    got = await q.get_gadgets_batch(conn, [q.GetGadgetsBatchParams(i) for i in ids])
    assert got == [q.GetGadgetsBatchRow(b.id, "B"), None, q.GetGadgetsBatchRow(a.id, "A")]
    assert type(got[0]) is q.GetGadgetsBatchRow
    assert await q.get_gadgets_batch(conn, []) == []


async def test_parts_of_gadgets_batchmany(conn: Conn) -> None:
    a = await new_gadget(conn, name="A")
    b = await new_gadget(conn, name="B")
    p1 = await new_part(conn, a, "p1")
    p2 = await new_part(conn, a, "p2")
    ids = [a.id, b.id, 999999, a.id]
    got = await q.parts_of_gadgets(conn, [q.PartsOfGadgetsParams(i) for i in ids])
    rows_a = [q.PartsOfGadgetsRow(p1.id, "p1"), q.PartsOfGadgetsRow(p2.id, "p2")]
    assert got == [rows_a, [], [], rows_a]
    assert all(type(r) is q.PartsOfGadgetsRow for r in got[0])
    assert await q.parts_of_gadgets(conn, []) == []


# --- statistics ---------------------------------------------------------------------


async def test_gadget_stats_empty(conn: Conn) -> None:
    await new_gadget(conn, qty=5, price=Decimal(5), kind=GadgetsKind.TOOL)  # filtered out
    stats = await q.gadget_stats(conn, kind=GadgetsKind.SO_SO)
    assert stats == q.GadgetStatsRow(0, None, None, None, None, None, None, Decimal(0))
    assert stats is not None
    assert type(stats.total) is int
    assert type(stats.max_qty_or_zero) is Decimal


async def test_gadget_stats_values(conn: Conn) -> None:
    for qty, price in [(22, "1000.00"), (30, "2000.50"), (40, None)]:
        await new_gadget(conn, qty=qty, price=price and Decimal(price), kind=GadgetsKind.SO_SO)
    await new_gadget(conn, qty=99, price=Decimal("1.00"), kind=GadgetsKind.TOY)
    stats = await q.gadget_stats(conn, kind=GadgetsKind.SO_SO)
    assert stats is not None
    assert (stats.total, stats.min_qty, stats.max_qty, stats.max_qty_or_zero) == (
        3,
        22,
        40,
        Decimal(40),
    )
    assert isinstance(stats.avg_qty, Decimal)
    assert stats.avg_qty.quantize(Decimal("0.01")) == Decimal("30.67")
    assert (stats.min_price, stats.max_price) == (Decimal("1000.00"), Decimal("2000.50"))
    assert stats.avg_price == Decimal("1500.25")
    for value in (stats.min_price, stats.max_price, stats.avg_price):
        assert type(value) is Decimal
    for number in (stats.total, stats.min_qty, stats.max_qty):
        assert type(number) is int
    # MariaDB types COALESCE(max(INT UNSIGNED), 0) as DECIMAL, and so does the lock file
    assert type(stats.max_qty_or_zero) is Decimal
    assert stats.avg_qty == Decimal("30.6667")


@pytest.mark.parametrize(
    ("sql", "args", "expected"),
    [
        (
            "a IN (/*SLICE:ids*/%s) AND b = %s",
            ([1, 2, 3], "x"),
            ("a IN (%s, %s, %s) AND b = %s", [1, 2, 3, "x"]),
        ),
        ("a IN (/*SLICE:ids*/%s) AND b = %s", ([], "x"), ("a IN (NULL) AND b = %s", ["x"])),
        (
            "n = '100%%' AND a IN (/*SLICE:ids*/%s) OR c LIKE %s",
            ((7,), "p%"),
            ("n = '100%%' AND a IN (%s) OR c LIKE %s", [7, "p%"]),
        ),
    ],
)
def test_expand_slices(sql: str, args: tuple[Any, ...], expected: tuple[str, list[Any]]) -> None:
    assert expand_slices(sql, args) == expected
