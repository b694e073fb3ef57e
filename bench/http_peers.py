"""The two fastest peers a performance-minded team would pick, for both benchmarked lists,
each written the way its own documentation recommends for speed (issue 31):

  litestar    Litestar + msgspec Structs as return types (Litestar encodes them with
              msgspec, no dict or pydantic step) on raw asyncpg; rows become Structs
              positionally, the columns in the SELECT's order
  blacksheep  BlackSheep + raw asyncpg + orjson, the body made with orjson.dumps and sent
              as a bytes Content (the docs' advice: no decode -> str -> encode passage)

Both run under uvicorn with uvloop and httptools, one worker, no access log (what the
FastAPI rivals get too), no middleware: bare endpoints. Same SQL text as the services
(the generated modules' constants), same JSON shape; bench.http_frameworks and
bench.http_users check that the bodies equal the service's after parsing.
Run: python -m bench.http_peers {litestar,blacksheep} {departments,users} PORT DSN [POINTS]
"""

# no `from __future__ import annotations`: Litestar and msgspec resolve the hints at runtime

import asyncio
import datetime
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any

import asyncpg
import msgspec
import orjson
import uvicorn
from blacksheep import Application, Content, Response
from litestar import Litestar, get
from litestar.params import Parameter

from bench.http_users import LIST_USERS, STATS_ARGS, cursor_after, page_args, points_client
from services.departments.db.departments import COUNT_DEPARTMENTS as COUNT
from services.departments.db.departments import PLAIN_DEPARTMENTS_PAGE as PAGE
from services.users.db.users import USER_STATISTICS

JSON = b"application/json"


class Department(msgspec.Struct):
    id: uuid.UUID
    name: str
    address: str
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    archived_at: datetime.datetime | None


class Meta(msgspec.Struct):
    total: int
    limit: int
    page: int


class DepartmentPage(msgspec.Struct):
    data: list[Department]
    meta: Meta


class User(msgspec.Struct):
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
    picture_url: str | None  # the bench's users have no picture: None, as the service says
    points: int
    version: int
    created_at: datetime.datetime


class Range(msgspec.Struct):
    min: Decimal | None
    max: Decimal | None
    avg: Decimal | None


class Statistics(msgspec.Struct):
    count: int
    age: Range
    salary: Range


class UserMeta(msgspec.Struct):
    total: int
    limit: int
    page: int
    next_cursor: str | None
    statistics: Statistics


class UserPage(msgspec.Struct):
    data: list[User]
    meta: UserMeta


def _pool_lifespan(dsn: str, points_addr: str | None, state: dict[str, Any]) -> Callable[..., Any]:
    @asynccontextmanager
    async def lifespan(*_: Any) -> AsyncIterator[None]:
        state["db"] = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
        try:
            if points_addr is None:
                yield
            else:
                async with points_client(points_addr) as client:
                    state["points"] = client
                    yield
        finally:
            await state["db"].close()

    return lifespan


async def _users(state: dict[str, Any], limit: int) -> tuple[list[Any], Any, dict[str, int]]:
    """The page, then the page's points over gRPC while the statistics run (as the service
    and the reference overlap them)."""
    async with state["db"].acquire() as conn:
        rows = await conn.fetch(LIST_USERS, *page_args(limit))
        points = asyncio.create_task(
            state["points"].get_user_list_points([str(r[0]) for r in rows])
        )
        stats = await conn.fetchrow(USER_STATISTICS, *STATS_ARGS)
    return rows, stats, await points


def _user_values(r: Any, points: dict[str, int]) -> tuple[Any, ...]:
    """One LIST_USERS row in the User shape: picture_key (10) out, picture_url + points in."""
    return (*r[:10], None, points.get(str(r[0]), 0), r[11], r[12])


def litestar_app(endpoint: str, dsn: str, points_addr: str | None) -> Litestar:
    state: dict[str, Any] = {}

    @get("/v1/departments")
    async def list_departments(
        limit: Annotated[int, Parameter(ge=1, le=100)] = 100,
        page: Annotated[int, Parameter(ge=1)] = 1,
    ) -> DepartmentPage:
        async with state["db"].acquire() as conn:
            total = await conn.fetchval(COUNT)
            rows = await conn.fetch(PAGE, (page - 1) * limit, limit)
        return DepartmentPage(
            data=[Department(*r) for r in rows], meta=Meta(total=total, limit=limit, page=page)
        )

    @get("/v1/users")
    async def list_users(limit: Annotated[int, Parameter(ge=1, le=1000)] = 100) -> UserPage:
        rows, s, points = await _users(state, limit)
        stats = Statistics(count=s[0], age=Range(s[1], s[2], s[3]), salary=Range(s[4], s[5], s[6]))
        return UserPage(
            data=[User(*_user_values(r, points)) for r in rows],
            meta=UserMeta(
                total=s[0],
                limit=limit,
                page=1,
                next_cursor=cursor_after(rows, limit),
                statistics=stats,
            ),
        )

    handler = list_departments if endpoint == "departments" else list_users
    return Litestar(
        route_handlers=[handler],
        lifespan=[_pool_lifespan(dsn, points_addr, state)],
        openapi_config=None,
        debug=False,
    )


def _default(value: Any) -> str:
    if isinstance(value, uuid.UUID | Decimal):  # asyncpg's UUID is not uuid.UUID for orjson
        return str(value)
    raise TypeError(type(value).__name__)


def _bounded(raw: str | None, default: int, high: int | None) -> int:
    value = default if raw is None else int(raw)
    if value < 1 or (high is not None and value > high):
        raise ValueError(raw)
    return value


def blacksheep_app(endpoint: str, dsn: str, points_addr: str | None) -> Application:
    app = Application()
    state: dict[str, Any] = {}
    pools = _pool_lifespan(dsn, points_addr, state)

    async def lifespan() -> AsyncIterator[None]:  # BlackSheep wants the generator itself
        async with pools():
            yield

    app.lifespan(lifespan)

    def json(value: Any) -> Response:
        return Response(200, None, Content(JSON, orjson.dumps(value, default=_default)))

    def bad_request() -> Response:
        return Response(400, None, Content(JSON, b'{"title":"bad query"}'))

    async def list_departments(limit: str | None = None, page: str | None = None) -> Response:
        try:
            size, number = _bounded(limit, 100, 100), _bounded(page, 1, None)
        except ValueError:
            return bad_request()
        async with state["db"].acquire() as conn:
            total = await conn.fetchval(COUNT)
            rows = await conn.fetch(PAGE, (number - 1) * size, size)
        return json(
            {
                "data": [dict(r) for r in rows],
                "meta": {"total": total, "limit": size, "page": number},
            }
        )

    async def list_users(limit: str | None = None) -> Response:
        try:
            size = _bounded(limit, 100, 1000)
        except ValueError:
            return bad_request()
        rows, s, points = await _users(state, size)
        keys = User.__struct_fields__
        stats = {
            "count": s[0],
            "age": {"min": s[1], "max": s[2], "avg": s[3]},
            "salary": {"min": s[4], "max": s[5], "avg": s[6]},
        }
        return json(
            {
                "data": [dict(zip(keys, _user_values(r, points), strict=True)) for r in rows],
                "meta": {
                    "total": s[0],
                    "limit": size,
                    "page": 1,
                    "next_cursor": cursor_after(rows, size),
                    "statistics": stats,
                },
            }
        )

    if endpoint == "departments":
        app.router.add_get("/v1/departments", list_departments)
    else:
        app.router.add_get("/v1/users", list_users)
    return app


APPS: dict[str, Callable[[str, str, str | None], Any]] = {
    "litestar": litestar_app,
    "blacksheep": blacksheep_app,
}


def main() -> None:
    kind, endpoint, port, dsn = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    points_addr = sys.argv[5] if len(sys.argv) > 5 else None
    uvicorn.run(
        APPS[kind](endpoint, dsn, points_addr),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
