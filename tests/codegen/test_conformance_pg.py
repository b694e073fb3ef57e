"""Conformance: every construct of issue 14, generated as users do (types lock on the real
server, then generate), imported, type-checked and called on real PostgreSQL with rows
holding NULLs. The project is tests/codegen/conformance/pg (a goose migration directory)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import pytest

from codegen.typeslock import schema_paths
from tests.codegen.conformance import live, support
from tests.codegen.conformance.live_pg import live_run
from tests.servers import DatabaseFactory, Servers
from tools.sqlc_types import apply_schema

CASE = Path(__file__).parent / "conformance" / "pg"


@pytest.fixture(scope="module")
def out(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Path:
    into = tmp_path_factory.mktemp("conformance_pg")
    return support.generate(CASE, into, "conformance_pg_out", {"TEST_PG_DSN": servers.pg_dsn})


@pytest.fixture(scope="module")
def q(out: Path) -> ModuleType:
    return support.import_generated(out, "q")


@pytest.fixture(scope="module")
def models(out: Path) -> ModuleType:
    return support.import_generated(out, "models")


@pytest.fixture(scope="module")
def dsn(databases: DatabaseFactory) -> str:
    created = databases.create("cf_pg", "postgresql")
    apply_schema(created, schema_paths(["schema"], CASE))
    return created


@pytest.fixture(scope="module")
async def module_conn(dsn: str) -> AsyncIterator[Any]:
    conn = await asyncpg.connect(dsn)
    yield conn
    await conn.close()


@pytest.fixture
async def conn(module_conn: Any) -> Any:
    await module_conn.execute(
        "TRUNCATE posts, users, archive.users, bar, exotic, parcels RESTART IDENTITY CASCADE"
    )
    return module_conn


async def new_user(q: ModuleType, conn: Any, **kw: Any) -> int:
    args: dict[str, Any] = {
        "name": "n",
        "bio": None,
        "age": None,
        "salary": None,
        "level": 1,
        "profile": None,
        "tags": [],
        "role": None,
        "sign": None,
        "left_at": None,
        **kw,
    }
    user_id: int = await q.create_user(conn, **args)
    return user_id


def params(func: Any) -> dict[str, str]:
    return {n: str(p.annotation) for n, p in inspect.signature(func).parameters.items()}


def test_generated_code_passes_mypy_strict(out: Path) -> None:
    result = support.mypy_strict(out)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_parameters_have_the_servers_types(q: ModuleType, conn: Any) -> None:
    """`profile ? $1 AND $2 = ANY(tags)`: both text (sqlc says jsonb and text[])."""
    assert params(q.profile_has_key_and_tag) == {
        "conn": "PgConn",
        "profile": "str | None",
        "tags": "str",
    }
    hit = await new_user(q, conn, profile={"city": "Oslo"}, tags=["x", "y"])
    await new_user(q, conn, profile={"town": "Bergen"}, tags=["x"])
    assert await q.profile_has_key_and_tag(conn, profile="city", tags="x") == [hit]
    assert await q.profile_has_key_and_tag(conn, profile="city", tags="z") == []


async def test_slice_becomes_any_and_all(q: ModuleType, conn: Any) -> None:
    ids = [await new_user(q, conn) for _ in range(4)]
    assert params(q.users_in_slice)["ids"] == "list[int]"
    assert await q.users_in_slice(conn, ids=[ids[0], ids[2]]) == [ids[0], ids[2]]
    assert await q.users_in_slice(conn, ids=[]) == []
    assert await q.users_not_in_slice(conn, ids=[ids[0]]) == ids[1:]
    assert await q.users_not_in_slice(conn, ids=[]) == ids


async def test_embed_next_to_a_same_named_table_in_another_schema(
    q: ModuleType, models: ModuleType, conn: Any
) -> None:
    """archive.users (id, age, name) must not replace public.users in the models."""
    await q.create_archived(conn, age=41, name="old")
    ann = await new_user(q, conn, name="Ann", age=41)
    bob = await new_user(q, conn, name="Bob")
    for title in ("a", "b"):
        await q.create_post(conn, user_id=ann, title=title)
    rows = await q.users_with_post_count(conn)
    assert [(r.users.id, r.users.name, r.users.age, r.post_count) for r in rows] == [
        (ann, "Ann", 41, 2),
        (bob, "Bob", None, 0),
    ]
    assert support.hints(q.UsersWithPostCountRow)["post_count"] == "int"
    archived = await q.archived_users(conn)
    assert archived == [models.ArchiveUser(id=1, age=41, name="old")]


async def test_the_same_table_embedded_twice(q: ModuleType, models: ModuleType, conn: Any) -> None:
    first = await new_user(q, conn, name="first")
    second = await new_user(q, conn, name="second")
    rows = await q.user_pairs(conn)
    assert len(rows) == 1
    pair = rows[0]
    assert [f.name for f in q.UserPairsRow.__dataclass_fields__.values()] == ["users", "users_"]
    assert (pair.users.id, pair.users.name) == (first, "first")
    assert (pair.users_.id, pair.users_.name) == (second, "second")
    assert isinstance(pair.users_, models.User)


async def test_enum_labels_that_are_not_identifiers(models: ModuleType) -> None:
    assert {m.name: m.value for m in models.Sign} == {
        "PLUS_SIGN": "+",
        "HYPHEN_MINUS": "-",
        "NUMBER_SIGN": "#",
        "ASTERISK": "*",
    }


async def test_enum_of_another_schema_as_parameter(
    q: ModuleType, models: ModuleType, conn: Any
) -> None:
    admin = await new_user(q, conn, role=models.AppRole.ADMIN, sign=models.Sign.ASTERISK)
    await new_user(q, conn, role=models.AppRole.MEMBER)
    assert params(q.users_by_role)["role"] == "AppRole | None"
    rows = await q.users_by_role(conn, role=models.AppRole.ADMIN)
    assert [(r.id, r.role, r.sign) for r in rows] == [
        (admin, models.AppRole.ADMIN, models.Sign.ASTERISK)
    ]
    assert rows[0].sign is models.Sign.ASTERISK


async def test_null_enum_and_json_values_decode_to_none(
    q: ModuleType, models: ModuleType, conn: Any
) -> None:
    await new_user(q, conn)
    await new_user(q, conn, sign=models.Sign.PLUS_SIGN, profile={"a": [1]})
    rows = await q.signs_and_profiles(conn)
    assert [(r.sign, r.profile, r.role) for r in rows] == [
        (None, None, None),
        (models.Sign.PLUS_SIGN, {"a": [1]}, None),
    ]


async def test_a_query_without_result_columns(q: ModuleType, conn: Any) -> None:
    await conn.execute("INSERT INTO bar VALUES (1), (NULL)")
    rows = await q.empty_rows(conn)
    assert len(rows) == 2
    assert all(isinstance(r, q.EmptyRowsRow) for r in rows)


STRICT_COLUMNS = [
    "monthly", "ceiled", "floored", "abs_age", "upper_bio", "bio_length", "net", "age_text",
    "older", "left_month", "level_unless_one", "tag_count", "k", "k_json", "first_tag", "band",
    "band_or_bio",
]  # fmt: skip


async def test_strict_expressions_are_optional_and_null_on_null_input(
    q: ModuleType, conn: Any
) -> None:
    hints = support.hints(q.StrictExpressionsRow)
    assert [name for name, hint in hints.items() if not hint.endswith("| None")] == []
    empty = await new_user(q, conn)
    row = await q.strict_expressions(conn, divisor=Decimal(2), id=empty)
    assert {name: getattr(row, name) for name in STRICT_COLUMNS} == dict.fromkeys(STRICT_COLUMNS)


async def test_strict_expressions_on_a_full_row(q: ModuleType, conn: Any) -> None:
    full = await new_user(
        q,
        conn,
        bio="hi",
        age=-40,
        salary=Decimal("1200.00"),
        level=7,
        profile={"k": "5"},
        tags=["t"],
        left_at=datetime.fromisoformat("2026-03-15T10:00:00+00:00"),
    )
    row = await q.strict_expressions(conn, divisor=Decimal(4), id=full)
    assert (row.monthly, row.ceiled, row.floored, row.abs_age) == (
        Decimal("100.00"),
        Decimal(1200),
        Decimal(1200),
        40,
    )
    assert (row.upper_bio, row.bio_length, row.net, row.age_text, row.older) == (
        "HI",
        2,
        Decimal("900.00"),
        "-40",
        False,
    )
    assert row.left_month == datetime.fromisoformat("2026-03-01T00:00:00+00:00")
    assert (row.level_unless_one, row.tag_count, row.k, row.k_json, row.first_tag) == (
        7,
        1,
        5,
        "5",
        "t",
    )
    assert (row.band, row.band_or_bio) == ("high", "high")


async def test_never_null_expressions_on_a_row_of_nulls(q: ModuleType, conn: Any) -> None:
    hints = support.hints(q.NeverNullExpressionsRow)
    assert [name for name, hint in hints.items() if hint.endswith("| None")] == []
    empty = await new_user(q, conn, name="Eve")
    row = await q.never_null_expressions(conn, id=empty)
    assert (row.age_or_zero, row.at_least_one, row.no_age, row.surely_older) == (0, 1, True, False)
    assert (row.bio_bang, row.name_bang, row.answer, row.letter, row.next_level) == (
        "!",
        "Eve!",
        42,
        "x",
        2,
    )
    assert isinstance(row.today, date)
    assert (row.all_posts, row.any_posts) == (0, False)


async def test_window_functions_are_null_on_the_first_row(q: ModuleType, conn: Any) -> None:
    hints = support.hints(q.WindowValuesRow)
    assert hints == {
        "id": "int",
        "previous_level": "int | None",
        "second_level": "int | None",
        "position": "int",
    }
    a = await new_user(q, conn, level=3)
    b = await new_user(q, conn, level=4)
    rows = await q.window_values(conn)
    assert [(r.id, r.previous_level, r.second_level, r.position) for r in rows] == [
        (a, None, None, 1),
        (b, 3, 4, 2),
    ]


async def test_a_union_column_is_nullable_when_a_branch_is(q: ModuleType, conn: Any) -> None:
    ret = str(inspect.signature(q.names_and_bios).return_annotation)
    assert ret == "list[str | None]"
    await new_user(q, conn, name="Ann")
    assert sorted(await q.names_and_bios(conn), key=str) == ["Ann", None]


async def test_left_join_lateral_and_derived_tables(q: ModuleType, conn: Any) -> None:
    assert support.hints(q.LatestPostPerUserRow) == {
        "id": "int",
        "title": "str | None",
        "total": "int | None",
    }
    assert support.hints(q.PostCountsRow) == {"id": "int", "n": "int | None"}
    writer = await new_user(q, conn)
    idle = await new_user(q, conn)
    await q.create_post(conn, user_id=writer, title="first")
    await q.create_post(conn, user_id=writer, title="second")
    latest = await q.latest_post_per_user(conn)
    assert [(r.id, r.title, r.total) for r in latest] == [(writer, "second", 2), (idle, None, None)]
    counts = await q.post_counts(conn)
    assert [(r.id, r.n) for r in counts] == [(writer, 2), (idle, None)]


async def test_a_cte_column_has_the_servers_type(q: ModuleType, conn: Any) -> None:
    assert support.hints(q.TotalSalaryRow) == {"total": "Decimal | None", "people": "int"}
    nobody = await q.total_salary(conn)
    assert (nobody.total, nobody.people) == (None, 0)
    await new_user(q, conn, salary=Decimal("10.50"))
    await new_user(q, conn, salary=Decimal("0.25"))
    row = await q.total_salary(conn)
    assert row.total == Decimal("10.75")
    assert isinstance(row.total, Decimal)


async def test_types_asyncpg_decodes_round_trip(q: ModuleType, conn: Any) -> None:
    values: dict[str, Any] = {
        "b": asyncpg.BitString("101"),
        "vb": asyncpg.BitString("1"),
        "mac": "08:00:2b:01:02:03",
        "mac_8": "08:00:2b:01:02:03:04:05",
        "m": "12.50",
        "pt": asyncpg.Point(1, 2),
        "bx": asyncpg.Box((3, 4), (1, 2)),
        "ln": asyncpg.Line(1, 2, 3),
        "ls": asyncpg.LineSegment((1, 2), (3, 4)),
        "pa": asyncpg.Path((1, 2), (3, 4), is_closed=False),
        "pg": asyncpg.Polygon((1, 2), (3, 4), (5, 6)),
        "ci": asyncpg.Circle((1, 2), 3),
        "r": asyncpg.Range(1, 5),
        "nr": asyncpg.Range(Decimal("1.5"), Decimal("2.5")),
        "dr": asyncpg.Range(date(2026, 1, 1), date(2026, 2, 1)),
        "mr": [asyncpg.Range(1, 3), asyncpg.Range(5, 8)],
        "tsv": "a b",
        "x": 7,
    }
    row = await q.create_exotic(conn, **values)
    assert isinstance(row.b, asyncpg.BitString)
    assert row.b == values["b"]
    assert (row.pt, row.r, row.nr, row.dr, row.mr) == (
        values["pt"],
        values["r"],
        values["nr"],
        values["dr"],
        values["mr"],
    )
    assert (row.mac, row.mac_8, row.tsv, row.x) == (values["mac"], values["mac_8"], "'a' 'b'", 7)
    assert row.m == "$12.50"
    assert isinstance(row.pa, asyncpg.Path)
    assert isinstance(row.ci, asyncpg.Circle)
    assert row.ci == values["ci"]


async def test_composite_types_are_dataclasses(
    q: ModuleType, models: ModuleType, conn: Any
) -> None:
    assert support.hints(models.Address) == {
        "street": "str | None",
        "zip": "int | None",
        "sign": "Sign | None",
    }
    assert support.hints(models.Parcel) == {
        "id": "int",
        "ship": "Shipment",
        "home": "Address | None",
    }
    ship = models.Shipment(
        dest=models.Address("Main St", 12, models.Sign.NUMBER_SIGN),
        weight=Decimal("2.5"),
        tags=["fragile"],
    )
    parcel = await q.create_parcel(conn, ship=ship, home=None)
    assert parcel == models.Parcel(id=1, ship=ship, home=None)
    assert isinstance(parcel.ship.dest, models.Address)
    assert parcel.ship.dest.sign is models.Sign.NUMBER_SIGN
    home = models.Address(None, None, None)
    again = await q.create_parcel(conn, ship=models.Shipment(None, None, None), home=home)
    assert (again.ship, again.home) == (models.Shipment(None, None, None), home)


def test_refused_query_is_left_out_and_the_rest_generated(q: ModuleType, models: Any) -> None:
    assert not hasattr(q, "insert_without_returning")
    assert hasattr(q, "create_exotic")
    assert support.hints(models.Unused) == {"id": "int | None", "snap": "Any"}


async def test_the_live_run_finds_no_lie(q: ModuleType, databases: DatabaseFactory) -> None:
    """The live conformance run (tests/codegen/conformance/live.py) on this project."""
    project = live.Project(q.__package__ or "", ["q"], schema_paths(["schema"], CASE))
    dsn = databases.create("cf_pg_live", "postgresql")
    apply_schema(dsn, project.schema)
    lies = await live_run(dsn, project)
    assert not lies, live.report(lies)
