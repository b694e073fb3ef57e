"""The data layer vs what users would pick instead, same PostgreSQL/MariaDB, same queries.

PostgreSQL (departments: get by id, list 50, insert, update; users: the statistics):
  (a) generated   the generated repository on lib.db's pool (what the handlers run)
  (b) asyncpg     hand-written asyncpg on an asyncpg pool, returning the same dataclasses
  (c) orm         SQLAlchemy 2 async ORM, a session per operation (how web apps use it)
  (c') orm-long   the ORM with one long-lived session
  (d) core        SQLAlchemy Core async, a connection per operation
  (e) aiosql      aiosql on the asyncpg pool, the same SQL text
MariaDB (points: get by id, list 50 (IN), upsert): (a) generated vs hand-written aiomysql
vs the SQLAlchemy async ORM on aiomysql.

Every operation takes a pooled connection, as in a request. Wall time and client CPU per
operation, medians of interleaved rounds; prints the ratios to (a) (targets: (a) <= 1.05 x
(b); (c) >= 3 x (a)). Run: .venv/bin/python -m bench.data_access [--rounds N] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import sys
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomysql
import aiosql
import asyncpg
from sqlalchemy import CHAR, DateTime, Integer, Numeric, String, Uuid, func, select, text, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.common import Op, Timing, interleaved, ratio, write_figures
from lib.db.connecting import connect
from lib.logging import configure_logging
from services.departments.db import departments as dep_q
from services.departments.db.models import Department
from services.points.db import points as pts_q
from services.users.db import users as users_q
from services.users.db.users import UserStatisticsRow
from tools.local.databases import MYSQL_DEFAULT, PG_DEFAULT
from tools.local.dbadmin import drop_database
from tools.migrations import migrate

POOL = {"min_size": 2, "max_size": 10}


class Base(DeclarativeBase):
    pass


class DepartmentOrm(Base):
    __tablename__ = "departments"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012  (server defaults via RETURNING)
    id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    name: Mapped[str] = mapped_column(String)
    address: Mapped[str] = mapped_column(String)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[datetime.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    archived_at: Mapped[datetime.datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )


class UserOrm(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    age: Mapped[int | None] = mapped_column(Integer)
    salary: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))


class MyBase(DeclarativeBase):
    pass


class UserPointsOrm(MyBase):
    __tablename__ = "user_points"
    user_id: Mapped[str] = mapped_column(CHAR(36), primary_key=True)
    points: Mapped[int] = mapped_column(Integer)


AIOSQL = """
-- name: get_department(id)^
SELECT id, name, address, version, created_at, updated_at, archived_at
FROM departments WHERE id = :id;

-- name: list_departments(row_offset, row_limit)
SELECT id, name, address, version, created_at, updated_at, archived_at FROM departments
ORDER BY name ASC, id ASC LIMIT :row_limit OFFSET :row_offset;

-- name: create_department(name, address)^
INSERT INTO departments (name, address) VALUES (:name, :address)
RETURNING id, name, address, version, created_at, updated_at, archived_at;

-- name: update_department(name, address, id, version)^
UPDATE departments SET name = coalesce(:name, name), address = coalesce(:address, address),
       version = version + 1, updated_at = now()
WHERE id = :id AND version = :version
RETURNING id, name, address, version, created_at, updated_at, archived_at;

-- name: user_statistics(role, department_id, verified, search)^
SELECT count(*) AS total,
       min(age) AS min_age, max(age) AS max_age, round(avg(age), 2) AS avg_age,
       min(salary) AS min_salary, max(salary) AS max_salary, round(avg(salary), 2) AS avg_salary
FROM users
WHERE deleted_at IS NULL
  AND (cast(:role AS user_role) IS NULL OR role = cast(:role AS user_role))
  AND (cast(:department_id AS uuid) IS NULL OR department_id = cast(:department_id AS uuid))
  AND (cast(:verified AS boolean) IS NULL OR verified = cast(:verified AS boolean))
  AND (cast(:search AS text) IS NULL
       OR (first_name || ' ' || last_name || ' ' || email)
          ILIKE '%' || cast(:search AS text) || '%');
"""


async def _no_reset(conn: Any) -> None:
    """The same pool setting as the services' (ADR 0005): no reset query per release."""


async def seed_pg(dep_dsn: str, users_dsn: str, users: int) -> list[uuid.UUID]:
    conn = await asyncpg.connect(dep_dsn)
    ids = [uuid.uuid4() for _ in range(1000)]
    await dep_q.copy_departments(
        conn,
        [
            dep_q.CopyDepartmentsParams(i, f"Department {n:04d}", f"{n} Main St")
            for n, i in enumerate(ids)
        ],
    )
    await conn.execute("ANALYZE departments")
    await conn.close()
    conn = await asyncpg.connect(users_dsn)
    await conn.execute(
        """INSERT INTO users (email, password_hash, first_name, last_name, phone_number, age,
                              salary, role, verified)
           SELECT 'user' || n || '@example.com', 'x', 'First' || n, 'Last' || lpad(n::text, 7, '0'),
                  '+1 555 0100', 18 + n % 53, 30000 + (n * 7919) % 90000,
                  (ARRAY['CUSTOMER','PROVIDER','MODERATOR','ADMIN']::user_role[])[1 + n % 4],
                  n % 3 = 0
           FROM generate_series(1, $1) AS n""",
        users,
    )
    await conn.execute("ANALYZE users")
    await conn.close()
    return ids


def sa_url(dsn: str, driver: str) -> str:
    parts = urlsplit(dsn)
    return dsn.replace(f"{parts.scheme}://", f"{driver}://", 1)


async def bench_pg(dep_dsn: str, users_dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    ids = await seed_pg(dep_dsn, users_dsn, args.users)
    # (a) lib.db, as the services open it; (b)/(e) asyncpg pools with the same settings
    gen_db = await connect(dep_dsn, **POOL, reset=False)
    gen_users = await connect(users_dsn, **POOL, reset=False)
    hand = await asyncpg.create_pool(dep_dsn, **POOL, reset=_no_reset)
    hand_users = await asyncpg.create_pool(users_dsn, **POOL, reset=_no_reset)
    engine = create_async_engine(sa_url(dep_dsn, "postgresql+asyncpg"), pool_size=10)
    users_engine = create_async_engine(sa_url(users_dsn, "postgresql+asyncpg"), pool_size=10)
    session = async_sessionmaker(engine, expire_on_commit=False)
    users_session = async_sessionmaker(users_engine, expire_on_commit=False)
    long_session = session()
    long_users = users_session()
    queries: Any = aiosql.from_str(AIOSQL, "asyncpg")
    target = ids[500]
    dep_table = DepartmentOrm.__table__
    user_table = UserOrm.__table__
    counter = iter(range(10**9))

    def new_name() -> str:
        return f"Zz insert {next(counter)}"

    # each variant updates its own row, tracking the version it last saw (If-Match)
    versions = {name: (ids[10 + n], 1) for n, name in enumerate(("a", "b", "c", "c'", "d", "e"))}

    # --- (a) generated
    async def a_get() -> Department | None:
        async with gen_db.acquire() as conn:
            return await dep_q.get_department(conn, id=target)

    async def a_list() -> list[Department]:
        async with gen_db.acquire() as conn:
            return await dep_q.plain_departments_page(conn, row_offset=0, row_limit=50)

    async def a_insert() -> Department | None:
        async with gen_db.acquire() as conn:
            return await dep_q.create_department(conn, name=new_name(), address="1 Main St")

    async def a_update() -> None:
        row_id, version = versions["a"]
        async with gen_db.acquire() as conn:
            row = await dep_q.update_department(
                conn, name=new_name(), address=None, id=row_id, version=version
            )
        assert row is not None
        versions["a"] = (row_id, row.version)

    async def a_stats() -> UserStatisticsRow | None:
        async with gen_users.acquire() as conn:
            return await users_q.user_statistics(
                conn, role=None, department_id=None, verified=None, search=None
            )

    # --- (b) hand-written asyncpg, the same row classes
    async def b_get() -> Department | None:
        async with hand.acquire() as conn:
            row = await conn.fetchrow(dep_q.GET_DEPARTMENT, target)
        return None if row is None else Department(*row)

    async def b_list() -> list[Department]:
        async with hand.acquire() as conn:
            rows = await conn.fetch(dep_q.PLAIN_DEPARTMENTS_PAGE, 0, 50)
        return [Department(*r) for r in rows]

    async def b_insert() -> Department:
        async with hand.acquire() as conn:
            row = await conn.fetchrow(dep_q.CREATE_DEPARTMENT, new_name(), "1 Main St")
        return Department(*row)

    async def b_update() -> None:
        row_id, version = versions["b"]
        async with hand.acquire() as conn:
            row = await conn.fetchrow(dep_q.UPDATE_DEPARTMENT, new_name(), None, row_id, version)
        assert row is not None
        versions["b"] = (row_id, Department(*row).version)

    async def b_stats() -> UserStatisticsRow:
        async with hand_users.acquire() as conn:
            row = await conn.fetchrow(users_q.USER_STATISTICS, None, None, None, None)
        return UserStatisticsRow(*row)

    # --- (c) ORM, a session per operation; (c') one long session
    def orm_ops(label: str, make: Any, users_make: Any) -> dict[str, Op]:
        async def get() -> DepartmentOrm | None:
            async with make() as s:
                return (
                    await s.scalars(select(DepartmentOrm).where(DepartmentOrm.id == target))
                ).one_or_none()

        async def list_() -> list[DepartmentOrm]:
            async with make() as s:
                stmt = (
                    select(DepartmentOrm)
                    .order_by(DepartmentOrm.name, DepartmentOrm.id)
                    .limit(50)
                    .offset(0)
                )
                return list((await s.scalars(stmt)).all())

        async def insert() -> DepartmentOrm:
            async with make() as s:
                row = DepartmentOrm(name=new_name(), address="1 Main St")
                s.add(row)
                await s.commit()
                return row

        async def update_() -> None:
            row_id, version = versions[label]
            async with make() as s:
                stmt = (
                    update(DepartmentOrm)
                    .where(DepartmentOrm.id == row_id, DepartmentOrm.version == version)
                    .values(
                        name=new_name(), version=DepartmentOrm.version + 1, updated_at=func.now()
                    )
                    .returning(DepartmentOrm)
                )
                row = (await s.scalars(stmt)).one()
                await s.commit()
                versions[label] = (row_id, row.version)

        async def stats() -> UserStatisticsRow:
            async with users_make() as s:
                stmt = select(
                    func.count(),
                    func.min(UserOrm.age),
                    func.max(UserOrm.age),
                    func.round(func.avg(UserOrm.age), 2),
                    func.min(UserOrm.salary),
                    func.max(UserOrm.salary),
                    func.round(func.avg(UserOrm.salary), 2),
                ).where(UserOrm.deleted_at.is_(None))
                return UserStatisticsRow(*(await s.execute(stmt)).one())

        return {"get": get, "list": list_, "insert": insert, "update": update_, "stats": stats}

    class Long:
        """(c'): the same session every time (its own transaction commits on writes)."""

        def __init__(self, s: AsyncSession) -> None:
            self.s = s

        async def __aenter__(self) -> AsyncSession:
            return self.s

        async def __aexit__(self, *exc: object) -> None:
            return None

    # --- (d) Core, a connection per operation
    async def d_get() -> Department | None:
        async with engine.connect() as conn:
            row = (await conn.execute(select(dep_table).where(dep_table.c.id == target))).first()
        return None if row is None else Department(*row)

    async def d_list() -> list[Department]:
        stmt = select(dep_table).order_by(dep_table.c.name, dep_table.c.id).limit(50).offset(0)
        async with engine.connect() as conn:
            return [Department(*r) for r in (await conn.execute(stmt)).all()]

    async def d_insert() -> Department:
        stmt = (
            dep_table.insert().values(name=new_name(), address="1 Main St").returning(*dep_table.c)
        )
        async with engine.begin() as conn:
            return Department(*(await conn.execute(stmt)).one())

    async def d_update() -> None:
        row_id, version = versions["d"]
        stmt = (
            dep_table.update()
            .where(dep_table.c.id == row_id, dep_table.c.version == version)
            .values(name=new_name(), version=dep_table.c.version + 1, updated_at=func.now())
            .returning(*dep_table.c)
        )
        async with engine.begin() as conn:
            row = Department(*(await conn.execute(stmt)).one())
        versions["d"] = (row_id, row.version)

    async def d_stats() -> UserStatisticsRow:
        c = user_table.c
        stmt = select(
            func.count(),
            func.min(c.age),
            func.max(c.age),
            func.round(func.avg(c.age), 2),
            func.min(c.salary),
            func.max(c.salary),
            func.round(func.avg(c.salary), 2),
        ).where(c.deleted_at.is_(None))
        async with users_engine.connect() as conn:
            return UserStatisticsRow(*(await conn.execute(stmt)).one())

    # --- (e) aiosql on the asyncpg pool
    async def e_get() -> Department | None:
        async with hand.acquire() as conn:
            row = await queries.get_department(conn, id=target)
        return None if row is None else Department(*row)

    async def e_list() -> list[Department]:
        async with hand.acquire() as conn:
            rows = queries.list_departments(conn, row_offset=0, row_limit=50)
            return [Department(*r) async for r in rows]  # aiosql 15 yields rows

    async def e_insert() -> Department:
        async with hand.acquire() as conn:
            return Department(
                *await queries.create_department(conn, name=new_name(), address="1 Main St")
            )

    async def e_update() -> None:
        row_id, version = versions["e"]
        async with hand.acquire() as conn:
            row = await queries.update_department(
                conn, name=new_name(), address=None, id=row_id, version=version
            )
        versions["e"] = (row_id, Department(*row).version)

    async def e_stats() -> UserStatisticsRow:
        async with hand_users.acquire() as conn:
            row = await queries.user_statistics(
                conn, role=None, department_id=None, verified=None, search=None
            )
        return UserStatisticsRow(*row)

    variants: dict[str, dict[str, Op]] = {
        "generated": {
            "get": a_get,
            "list": a_list,
            "insert": a_insert,
            "update": a_update,
            "stats": a_stats,
        },
        "asyncpg": {
            "get": b_get,
            "list": b_list,
            "insert": b_insert,
            "update": b_update,
            "stats": b_stats,
        },
        "orm": orm_ops("c", session, users_session),
        "orm-long": orm_ops("c'", lambda: Long(long_session), lambda: Long(long_users)),
        "core": {
            "get": d_get,
            "list": d_list,
            "insert": d_insert,
            "update": d_update,
            "stats": d_stats,
        },
        "aiosql": {
            "get": e_get,
            "list": e_list,
            "insert": e_insert,
            "update": e_update,
            "stats": e_stats,
        },
    }
    # the same answers before any timing: a variant that reads something else is no rival
    answers = {name: await ops["stats"]() for name, ops in variants.items()}
    assert len({repr(a) for a in answers.values()}) == 1, answers
    gets = {name: await ops["get"]() for name, ops in variants.items()}
    assert len({str(g.id) + g.name for g in gets.values() if g is not None}) == 1, gets
    results: dict[str, dict[str, Timing]] = {}
    try:
        for op, per_round in (
            ("get", 60),
            ("list", 40),
            ("insert", 25),
            ("update", 25),
            ("stats", 3),
        ):
            results[op] = await interleaved(
                {name: ops[op] for name, ops in variants.items()},
                rounds=args.rounds,
                per_round=max(1, int(per_round * args.scale)),
                warmup=max(2, int(20 * args.scale)),
            )
    finally:
        await long_session.close()
        await long_users.close()
        await engine.dispose()
        await users_engine.dispose()
        await hand.close()
        await hand_users.close()
        await gen_db.close()
        await gen_users.close()
    return {
        op: {name: t.__dict__ for name, t in timings.items()} for op, timings in results.items()
    }


async def bench_mysql(dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    parts = urlsplit(dsn)
    ids = [str(uuid.uuid4()) for _ in range(1000)]
    gen_db = await connect(dsn, **POOL)
    async with gen_db.acquire() as conn:
        await pts_q.set_user_points(
            conn, [pts_q.SetUserPointsParams(i, n) for n, i in enumerate(ids)]
        )
    hand = await aiomysql.create_pool(
        minsize=2,
        maxsize=10,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        db=parts.path.lstrip("/"),
        autocommit=True,
        charset="utf8mb4",
    )
    engine = create_async_engine(sa_url(dsn, "mysql+aiomysql"), pool_size=10)
    session = async_sessionmaker(engine, expire_on_commit=False)
    target, batch = ids[500], ids[:50]
    in_list = pts_q.GET_USER_LIST_POINTS.replace("/*SLICE:user_ids*/%s", ", ".join(["%s"] * 50))
    counter = iter(range(10**9))

    async def a_get() -> int | None:
        async with gen_db.acquire() as conn:
            return await pts_q.get_user_points(conn, user_id=target)

    async def a_list() -> list[pts_q.GetUserListPointsRow]:
        async with gen_db.acquire() as conn:
            return await pts_q.get_user_list_points(conn, user_ids=batch)

    async def a_upsert() -> None:
        async with gen_db.acquire() as conn:
            await pts_q.upsert_user_points(conn, user_id=ids[7], points=next(counter))

    async def b_get() -> int | None:
        async with hand.acquire() as conn, conn.cursor() as cur:
            await cur.execute(pts_q.GET_USER_POINTS, (target,))
            row = await cur.fetchone()
        return None if row is None else int(row[0])

    async def b_list() -> list[pts_q.GetUserListPointsRow]:
        async with hand.acquire() as conn, conn.cursor() as cur:
            await cur.execute(in_list, batch)
            return [pts_q.GetUserListPointsRow(*r) for r in await cur.fetchall()]

    async def b_upsert() -> None:
        async with hand.acquire() as conn, conn.cursor() as cur:
            await cur.execute(pts_q.UPSERT_USER_POINTS, (ids[8], next(counter)))

    async def c_get() -> int | None:
        async with session() as s:
            return await s.scalar(
                select(UserPointsOrm.points).where(UserPointsOrm.user_id == target)
            )

    async def c_list() -> list[pts_q.GetUserListPointsRow]:
        async with session() as s:
            stmt = select(UserPointsOrm.user_id, UserPointsOrm.points).where(
                UserPointsOrm.user_id.in_(batch)
            )
            return [pts_q.GetUserListPointsRow(*r) for r in (await s.execute(stmt)).all()]

    async def c_upsert() -> None:
        stmt = mysql_insert(UserPointsOrm).values(user_id=ids[9], points=next(counter))
        async with session() as s:
            await s.execute(stmt.on_duplicate_key_update(points=stmt.inserted.points))
            await s.commit()

    variants = {
        "generated": {"get": a_get, "list": a_list, "upsert": a_upsert},
        "aiomysql": {"get": b_get, "list": b_list, "upsert": b_upsert},
        "orm": {"get": c_get, "list": c_list, "upsert": c_upsert},
    }
    assert {await v["get"]() for v in variants.values()} == {500}
    results: dict[str, dict[str, Timing]] = {}
    try:
        for op, per_round in (("get", 60), ("list", 40), ("upsert", 25)):
            results[op] = await interleaved(
                {name: ops[op] for name, ops in variants.items()},
                rounds=args.rounds,
                per_round=max(1, int(per_round * args.scale)),
                warmup=max(2, int(20 * args.scale)),
            )
    finally:
        await engine.dispose()
        hand.close()
        await hand.wait_closed()
        await gen_db.close()
    return {
        op: {name: t.__dict__ for name, t in timings.items()} for op, timings in results.items()
    }


def summarize(figures: dict[str, Any]) -> list[list[str]]:
    """Benchmark table rows: per engine and query, (a)'s wall and client CPU time, and each rival's
    ratio to it (wall / CPU: on a shared machine the CPU ratio is the steadier one)."""
    rows = []
    for engine, ops in (("PostgreSQL", figures["postgresql"]), ("MariaDB", figures["mariadb"])):
        for op, by_variant in ops.items():
            base = by_variant["generated"]
            rivals = ", ".join(
                f"{name} {t['wall_us'] / base['wall_us']:.2f}/{t['cpu_us'] / base['cpu_us']:.2f}"
                for name, t in by_variant.items()
                if name != "generated"
            )
            rows.append(
                [
                    f"{engine} {op}: generated µs wall/CPU; rivals' ratios to it, wall/CPU",
                    f"{base['wall_us']:.0f}/{base['cpu_us']:.0f} µs; {rivals}",
                ]
            )
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.data_access")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0, help="operations per round x")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    configure_logging("bench", "WARNING")
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
    pg = os.environ.get("BENCH_PG", PG_DEFAULT)
    dep_dsn, users_dsn = f"{pg}/fixup_bench_da_dep_{suffix}", f"{pg}/fixup_bench_da_users_{suffix}"
    my_dsn = f"{os.environ.get('BENCH_MYSQL', MYSQL_DEFAULT)}/fixup_bench_da_pts_{suffix}"
    try:
        migrate.up("departments", dep_dsn)
        migrate.up("users", users_dsn)
        migrate.up("points", my_dsn)
        figures: dict[str, Any] = {
            "postgresql": asyncio.run(bench_pg(dep_dsn, users_dsn, args)),
            "mariadb": asyncio.run(bench_mysql(my_dsn, args)),
        }
    finally:
        for dsn in (dep_dsn, users_dsn, my_dsn):
            drop_database(dsn)
    pg_ops = figures["postgresql"]
    figures["targets"] = {
        op: {
            "generated/asyncpg": ratio(t["generated"]["wall_us"], t["asyncpg"]["wall_us"]),
            "orm/generated": ratio(t["orm"]["wall_us"], t["generated"]["wall_us"]),
        }
        for op, t in pg_ops.items()
    }
    figures["targets"].update(
        {
            f"mariadb {op}": {
                "generated/aiomysql": ratio(t["generated"]["wall_us"], t["aiomysql"]["wall_us"]),
                "orm/generated": ratio(t["orm"]["wall_us"], t["generated"]["wall_us"]),
            }
            for op, t in figures["mariadb"].items()
        }
    )
    figures["rows"] = summarize(figures)
    print(f"data access, medians of {args.rounds} interleaved rounds (wall µs / client CPU µs):")
    for engine in ("postgresql", "mariadb"):
        for op, by_variant in figures[engine].items():
            cells = "  ".join(
                f"{n} {t['wall_us']:.0f}/{t['cpu_us']:.0f}" for n, t in by_variant.items()
            )
            print(f"  {engine:10} {op:7} {cells}")
    for op, r in figures["targets"].items():
        print(f"  {op:16} " + "  ".join(f"{k} {v:.2f}" for k, v in r.items()))
    print("  targets: generated/hand <= 1.05, orm/generated >= 3")
    write_figures(args.json, figures)
    return figures


if __name__ == "__main__":
    sys.exit(main() and 0)
