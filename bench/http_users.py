"""GET /v1/users?limit=50 (20,000 users: the page, the statistics over them, the page's
points in one gRPC call to a real points process) under wrk: this project vs the same
endpoint written by hand (aiohttp + asyncpg) and with FastAPI under uvicorn (p1: the
SQLAlchemy async ORM + pydantic; p2: raw asyncpg) and the two fastest peers
(bench/http_peers.py: Litestar + msgspec Structs + asyncpg, BlackSheep + asyncpg + orjson,
whose bodies must equal the service's after parsing). Every server is its own process; all
call points through lib.clients.points (the gRPC client is not what is compared).
The service checks the moderator's token, limits, logs and counts; the others do not.
`service` runs with its page cache off (PAGE_CACHE_BYTES=0); `service-cached` is another
process with it on, warm (ADR 0056: after the stamp read, the users table's and points'
versions); `service-mixed` the same process while a users row is written every 100 ms (each
write moves the stamp: the next request of the page renders it again).
Interleaved rounds, wrk -t1, bounded; req/s and the server's CPU per request; each round
also measures the database's ceiling (pgbench, the same page + statistics statements,
prepared, as many clients as wrk). Targets: service >= 0.95 x reference, >= 5 x p1,
>= 2 x p2, >= 1.1 x litestar and blacksheep.
Run: .venv/bin/python -m bench.http_users [--rounds 5] [--seconds 1] [--json F]
     python -m bench.http_users serve {reference,p1,p2} PORT DSN POINTS_ADDR  (one rival)
"""

# no `from __future__ import annotations`: FastAPI resolves the Depends() below at runtime

import argparse
import asyncio
import base64
import contextlib
import datetime
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import orjson
import uvicorn
import uvloop
from aiohttp import web
from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Boolean, DateTime, Integer, Numeric, String, Uuid, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.common import (
    ROOT,
    Load,
    Writes,
    parsed_answer,
    pgbench_tps,
    wait_ready,
    with_literals,
    write_figures,
    wrk,
    wrk_cpu,
)
from bench.data_access import sa_url
from bench.growth import grow
from bench.profile_http import profile, report
from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner, generate_keypair
from lib.clients.points import PointsClient
from lib.grpc.client import ChannelPool
from lib.http.cursor import encode
from lib.http.listing import Page
from services.users.db import users as users_q
from services.users.db.users import USER_STATISTICS, USER_STATISTICS_SUMMARY
from services.users.settings import UsersSettings
from tools.local.databases import MYSQL_DEFAULT, PG_DEFAULT
from tools.local.dbadmin import drop_database
from tools.local.ports import free_port
from tools.migrations import migrate

PATH = "/v1/users?limit=50"
USERS = 20_000
# no filter, by last name, from the start (the keyset parameters NULL)
LIST_USERS = users_q.LIST_USERS["last_name", "asc"]  # the statement of ?orderby=last_name


def page_args(limit: int = 50) -> tuple[Any, ...]:
    """ListUsersByLastNameAsc's parameters: no filter, offset 0, no cursor (from the start)."""
    return (None, None, None, None, 0, limit, None, None)


PAGE_ARGS = page_args()
STATS_ARGS = (None, None, None, None)  # the seed's scan, as the peers and p1/p2 compute it
SUMMARY_ARGS = (None, None, None)  # the service's: the summary the writes keep (ADR 0023)
TARGETS = {
    "service/reference": ("reference", 0.95),
    "service/p1": ("p1", 5.0),
    "service/p2": ("p2", 2.0),
    "service/litestar": ("litestar", 1.1),
    "service/blacksheep": ("blacksheep", 1.1),
}
PEERS = ("litestar", "blacksheep")
# issue 67: every layer on against the bare peers by server CPU per request: the cache off
# >= 1.0, warm >= 1.25, the mixed run reported beside the warm one (None: reported only)
PEER_CPU_TARGETS = {"service": 1.0, "service-cached": 1.25, "service-mixed": None}
CACHE = {
    "service": "cache off",
    "service-cached": "cache warm",
    "service-mixed": "cache on, a users row written every 100 ms",
}
# the mixed run's write: one row rewritten, which moves the users table's stamp
MIXED_WRITE = (
    "UPDATE users SET first_name = first_name"
    " WHERE id = (SELECT id FROM users ORDER BY last_name, id LIMIT 1)"
)
MIXED_INTERVAL = 0.1
STATEMENTS = (
    with_literals(LIST_USERS, PAGE_ARGS),
    with_literals(USER_STATISTICS_SUMMARY, SUMMARY_ARGS),
)


def default(value: Any) -> str:
    return str(value)


def statistics_json(row: Any) -> dict[str, Any]:
    return {
        "count": row[0],
        "age": {"min": row[1], "max": row[2], "avg": row[3]},
        "salary": {"min": row[4], "max": row[5], "avg": row[6]},
    }


def cursor_after(rows: list[Any], limit: int) -> str | None:
    """meta.next_cursor as the service answers it (last_name, id of a full page's last row)."""
    if len(rows) < limit:
        return None
    last = rows[-1]
    return encode(Page(limit, 1, "last_name", "asc", None), last[3], last[0])


def page_json(rows: list[Any], stats: Any, points: dict[str, int]) -> dict[str, Any]:
    users = []
    for r in rows:
        user = dict(r)
        user["points"] = points.get(str(user["id"]), 0)
        users.append(user)
    meta = {
        "total": stats[0],
        "limit": 50,
        "page": 1,
        "next_cursor": cursor_after(rows, 50),
        "statistics": statistics_json(stats),
    }
    return {"data": users, "meta": meta}


@asynccontextmanager
async def points_client(addr: str) -> AsyncIterator[PointsClient]:
    """The client the users service builds, with its default channel count."""
    pool = ChannelPool(addr, UsersSettings.model_fields["points_grpc_pool_size"].default)
    try:
        yield PointsClient(pool, timeout=5)
    finally:
        await pool.close()


def reference_app(dsn: str, points_addr: str) -> web.Application:
    """aiohttp + asyncpg, one connection per request as the service, same SQL and calls."""
    app = web.Application()
    state: dict[str, Any] = {}

    async def ctx(_: web.Application) -> AsyncIterator[None]:
        state["db"] = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
        async with points_client(points_addr) as client:
            state["points"] = client
            yield
        await state["db"].close()

    async def handler(_: web.Request) -> web.Response:
        async with state["db"].acquire() as conn:
            rows = await conn.fetch(LIST_USERS, *PAGE_ARGS)
            points = asyncio.create_task(
                state["points"].get_user_list_points([str(r["id"]) for r in rows])
            )
            stats = await conn.fetchrow(USER_STATISTICS_SUMMARY, *SUMMARY_ARGS)
        body = page_json(rows, stats, await points)
        return web.Response(
            body=orjson.dumps(body, default=default), content_type="application/json"
        )

    app.cleanup_ctx.append(ctx)
    app.router.add_get("/v1/users", handler)
    return app


def asyncpg_app(dsn: str, points_addr: str) -> FastAPI:
    """p2: FastAPI + asyncpg; dicts out (FastAPI's own JSON encoding)."""
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["db"] = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
        async with points_client(points_addr) as client:
            state["points"] = client
            yield
        await state["db"].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/v1/users")
    async def list_users(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        async with state["db"].acquire() as conn:
            rows = await conn.fetch(LIST_USERS, *page_args(limit))
            stats = await conn.fetchrow(USER_STATISTICS, *STATS_ARGS)
        points = await state["points"].get_user_list_points([str(r["id"]) for r in rows])
        return page_json(rows, stats, points)

    return app


class Base(DeclarativeBase):
    pass


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email: Mapped[str] = mapped_column(String)
    first_name: Mapped[str] = mapped_column(String)
    last_name: Mapped[str] = mapped_column(String)
    phone_number: Mapped[str] = mapped_column(String)
    role: Mapped[str] = mapped_column(String)
    verified: Mapped[bool] = mapped_column(Boolean)
    department_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    age: Mapped[int | None] = mapped_column(Integer)
    salary: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    picture_key: Mapped[str | None] = mapped_column(String)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    email: str
    first_name: str
    last_name: str
    phone_number: str
    role: str
    verified: bool
    department_id: uuid.UUID | None
    age: int | None
    salary: Decimal | None
    version: int
    created_at: datetime.datetime
    points: int = 0


class Range(BaseModel):
    min: Decimal | None
    max: Decimal | None
    avg: Decimal | None


class Statistics(BaseModel):
    count: int
    age: Range
    salary: Range


class Meta(BaseModel):
    total: int
    limit: int
    page: int
    next_cursor: str | None
    statistics: Statistics


class UserList(BaseModel):
    data: list[UserOut]
    meta: Meta


def orm_app(dsn: str, points_addr: str) -> FastAPI:
    """p1: FastAPI + the SQLAlchemy async ORM (a session per request) + pydantic."""
    engine = create_async_engine(sa_url(dsn, "postgresql+asyncpg"), pool_size=10)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with points_client(points_addr) as client:
            state["points"] = client
            yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    async def get_session() -> AsyncIterator[AsyncSession]:
        async with sessions() as session:
            yield session

    @app.get("/v1/users", response_model=UserList)
    async def list_users(
        session: Annotated[AsyncSession, Depends(get_session)],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> UserList:
        live = UserRow.deleted_at.is_(None)
        users = list(
            await session.scalars(
                select(UserRow).where(live).order_by(UserRow.last_name, UserRow.id).limit(limit)
            )
        )
        s = (
            await session.execute(
                select(
                    func.count(),
                    func.min(UserRow.age),
                    func.max(UserRow.age),
                    func.round(func.avg(UserRow.age), 2),
                    func.min(UserRow.salary),
                    func.max(UserRow.salary),
                    func.round(func.avg(UserRow.salary), 2),
                ).where(live)
            )
        ).one()
        points = await state["points"].get_user_list_points([str(u.id) for u in users])
        data = [UserOut.model_validate(u) for u in users]
        for user in data:
            user.points = points.get(str(user.id), 0)
        stats = Statistics(
            count=s[0],
            age=Range(min=s[1], max=s[2], avg=s[3]),
            salary=Range(min=s[4], max=s[5], avg=s[6]),
        )
        after = cursor_after([(u.id, 0, 0, u.last_name) for u in users], limit)
        meta = Meta(total=s[0], limit=limit, page=1, next_cursor=after, statistics=stats)
        return UserList(data=data, meta=meta)

    return app


def serve(kind: str, port: int, dsn: str, points_addr: str) -> None:
    if kind == "reference":
        web.run_app(
            reference_app(dsn, points_addr),
            host="127.0.0.1",
            port=port,
            print=None,
            access_log=None,
            loop=uvloop.new_event_loop(),
        )
        return
    app = orm_app(dsn, points_addr) if kind == "p1" else asyncpg_app(dsn, points_addr)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


def same_page(body: bytes) -> tuple[list[str], int]:
    doc = json.loads(body)
    return [u["id"] for u in doc["data"]], doc["meta"]["total"]


async def seed(dsn: str, users: int = USERS) -> None:
    conn = await asyncpg.connect(dsn)
    await grow(conn, 0, users)  # a big table: its indexes built once after the rows
    await conn.execute("ANALYZE users")
    await conn.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    if argv is None and sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
        return {}
    parser = argparse.ArgumentParser(prog="python -m bench.http_users")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--users", type=int, default=USERS, help="rows in users (10^5, 10^6)")
    parser.add_argument(
        "--peer-target", type=float, default=TARGETS["service/litestar"][1], help="vs peers"
    )
    parser.add_argument("--seconds", type=float, default=1)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--profile", type=float, default=0, help="then py-spy the service (s)")
    args = parser.parse_args(argv)
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
    dsn = f"{os.environ.get('BENCH_PG', PG_DEFAULT)}/fixup_bench_hu_users_{suffix}"
    points_dsn = f"{os.environ.get('BENCH_MYSQL', MYSQL_DEFAULT)}/fixup_bench_hu_points_{suffix}"
    private, public = generate_keypair()
    token = TokenSigner(private, 3600).issue(uuid.uuid4(), Role.MODERATOR, True)[0]
    header = f"Authorization: Bearer {token}"
    procs: dict[str, subprocess.Popen[bytes]] = {}
    urls: dict[str, str] = {}
    grpc_port = free_port()
    points_addr = f"127.0.0.1:{grpc_port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LOG_FILE": "/dev/null",
        "LOG_LEVEL": "INFO",  # the access log made as in production; /dev/null: no disk
        "WORKERS": "1",
        "REDIS_URL": "",
        "RATE_LIMIT_IP_RATE": "1000000",
        "RATE_LIMIT_IP_BURST": "1000000",
        "RATE_LIMIT_USER_RATE": "1000000",
        "RATE_LIMIT_USER_BURST": "1000000",
    }
    try:
        migrate.up("users", dsn)
        migrate.up("points", points_dsn)
        asyncio.run(seed(dsn, args.users))
        py = sys.executable
        points_http = free_port()
        procs["points"] = subprocess.Popen(
            [py, "-m", "services.points"],
            cwd=ROOT,
            env={
                **env,
                "POINTS_DATABASE_URL": points_dsn,
                "POINTS_GRPC_PORT": str(grpc_port),
                "POINTS_PORT": str(points_http),
            },
        )
        wait_ready(f"http://127.0.0.1:{points_http}/health")  # before anyone calls it
        for name, page_cache in (("service", 0), ("service-cached", 8 * 1024 * 1024)):
            port = free_port()
            procs[name] = subprocess.Popen(
                [py, "-m", "services.users"],
                cwd=ROOT,
                env={
                    **env,
                    "USERS_DATABASE_URL": dsn,
                    "USERS_PORT": str(port),
                    "JWT_PUBLIC_KEY": public,
                    "JWT_PRIVATE_KEY": private,
                    "ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                    "POINTS_GRPC_ADDR": points_addr,
                    "PAGE_CACHE_BYTES": str(page_cache),
                },
            )
            urls[name] = f"http://127.0.0.1:{port}{PATH}"
        procs["service-mixed"] = procs["service-cached"]  # written meanwhile
        urls["service-mixed"] = urls["service-cached"]
        for kind in ("reference", "p1", "p2"):
            port = free_port()
            procs[kind] = subprocess.Popen(
                [py, "-m", "bench.http_users", "serve", kind, str(port), dsn, points_addr],
                cwd=ROOT,
                env=env,
            )
            urls[kind] = f"http://127.0.0.1:{port}{PATH}"
        for peer in PEERS:
            port = free_port()
            procs[peer] = subprocess.Popen(
                [py, "-m", "bench.http_peers", peer, "users", str(port), dsn, points_addr],
                cwd=ROOT,
                env=env,
            )
            urls[peer] = f"http://127.0.0.1:{port}{PATH}"
        auth = {"Authorization": f"Bearer {token}"}
        service_body = wait_ready(urls["service"], headers=auth)
        expected = same_page(service_body)
        for name, url in urls.items():
            body = wait_ready(url, headers=auth)
            assert same_page(body) == expected, f"{name} answers another page"
            if name in PEERS:
                assert parsed_answer(body) == parsed_answer(service_body), f"{name}: other body"
            doc = json.loads(body)
            assert "degraded" not in doc["meta"], f"{name}: points did not answer"
            assert all(isinstance(u["points"], int) for u in doc["data"]), name
        names = list(urls)
        for name in names:
            wrk(urls[name], seconds=1, connections=args.connections, headers=[header])
        runs: dict[str, list[Load]] = {name: [] for name in names}
        ceiling: list[float] = []
        writes = 0
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                with (
                    Writes(dsn, MIXED_WRITE, MIXED_INTERVAL)
                    if name == "service-mixed"
                    else contextlib.nullcontext() as writer
                ):
                    runs[name].append(
                        wrk_cpu(
                            urls[name],
                            procs[name].pid,
                            seconds=args.seconds,
                            connections=args.connections,
                            headers=[header],
                        )
                    )
                writes += writer.done if writer is not None else 0
            ceiling.append(
                pgbench_tps(dsn, STATEMENTS, clients=args.connections, seconds=args.seconds)
            )
        if args.profile:
            with tempfile.TemporaryDirectory() as tmp:
                raw = Path(tmp) / "profile.txt"
                profile(procs["service"].pid, urls["service"], args.profile, raw, [header])
                report(raw, 30)
    finally:
        # the points server last: a request still in a server when wrk stops needs it
        servers = [proc for name, proc in procs.items() if name not in ("points", "service-mixed")]
        for group in (servers, [procs[name] for name in procs if name == "points"]):
            for proc in group:
                proc.terminate()
            for proc in group:
                proc.wait(15)
        drop_database(dsn)
        drop_database(points_dsn)
    med = {
        name: {
            "rps": statistics.median(x.rps for x in got),
            "p50_ms": statistics.median(x.p50_ms for x in got),
            "p99_ms": statistics.median(x.p99_ms for x in got),
            "cpu_us_per_request": round(statistics.median(x.server_cpu_us for x in got), 1),
        }
        for name, got in runs.items()
    }
    ratios = {}
    compared = [(label, "service", rival, target) for label, (rival, target) in TARGETS.items()]
    compared += [
        (f"{ours}/{peer}", ours, peer, PEER_CPU_TARGETS[ours])
        for ours in CACHE
        if ours != "service"
        for peer in PEERS
    ]
    for label, ours, rival, target in compared:
        target = args.peer_target if ours == "service" and rival in PEERS else target
        pairs = list(zip(runs[ours], runs[rival], strict=True))
        ratios[label] = {
            "ratio": round(statistics.median(s.rps / o.rps for s, o in pairs), 3),
            "cpu_ratio": round(
                statistics.median(o.server_cpu_us / s.server_cpu_us for s, o in pairs), 3
            ),
            "target": target,
        }
    rows = [
        [
            f"`{PATH}` ({args.users} users, statistics, points over gRPC) req/s, p50, p99,"
            " server CPU µs per request",
            "; ".join(
                f"{n} {m['rps']:.0f}, {m['p50_ms']:.1f}, {m['p99_ms']:.1f} ms, "
                f"{m['cpu_us_per_request']:.0f} µs"
                for n, m in med.items()
            ),
        ]
    ]
    for label, r in ratios.items():
        if label.split("/")[0] != "service":
            continue
        met = "met" if r["ratio"] >= r["target"] else "NOT met"
        rows.append(
            [
                f"users list {label} req/s (target ≥ {r['target']})",
                f"{r['ratio']:.2f} {met}; by server CPU per request {r['cpu_ratio']:.2f}",
            ]
        )
    for ours, target in PEER_CPU_TARGETS.items():  # issue 67: by server CPU per request
        for peer in PEERS:
            cpu = ratios[f"{ours}/{peer}"]["cpu_ratio"]
            judged = "reported" if target is None else "met" if cpu >= target else "NOT met"
            wanted = f"target ≥ {target}" if target is not None else "reported"
            rows.append(
                [
                    f"users list {ours}/{peer} by server CPU per request ({CACHE[ours]}; {wanted})",
                    f"{cpu:.2f} {judged}",
                ]
            )
    share = statistics.median(s.rps / c for s, c in zip(runs["service"], ceiling, strict=True))
    ceiling_figures = {
        "statements": "page + statistics, pgbench -M prepared",
        "clients": args.connections,
        "tps": round(statistics.median(ceiling), 1),
        "service_share": round(share, 3),
    }
    rows.append(
        [
            f"PostgreSQL ceiling: the same page + statistics, pgbench prepared,"
            f" -c{args.connections}",
            f"{ceiling_figures['tps']:.0f} pairs/s; the service reaches {share:.2f} of it"
            " (the service also calls points)",
        ]
    )
    mixed_seconds = args.rounds * max(1, round(args.seconds))
    figures = {
        "endpoint": f"GET {PATH}",
        "mixed_writes_per_s": round(writes / mixed_seconds, 1),
        "servers": med,
        "ratios": ratios,
        "ceiling": ceiling_figures,
        "rows": rows,
    }
    print(
        f"GET {PATH} ({args.users} users), wrk -t1 -c{args.connections},"
        f" {args.rounds} x {args.seconds:g} s"
    )
    for name, m in med.items():
        print(
            f"  {name:10} {m['rps']:7.0f} req/s  p50 {m['p50_ms']:6.1f} ms"
            f"  p99 {m['p99_ms']:6.1f} ms"
            f"  CPU {m['cpu_us_per_request']:6.0f} µs/req"
        )
    for label, r in ratios.items():
        wanted = "reported" if r["target"] is None else f"target >= {r['target']}"
        print(f"  {label:24} {r['ratio']:.2f}  by CPU/request {r['cpu_ratio']:.2f}  ({wanted})")
    print(
        f"  ceiling (pgbench, same statements) {ceiling_figures['tps']:.0f} pairs/s,"
        f" service {share:.2f}"
    )
    write_figures(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
