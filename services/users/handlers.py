"""The users API (docs/api.md, "users"): the moderators' list with its statistics."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from lib.db.pool import Database
from lib.http.jsonio import json_response
from lib.http.keys import DB
from lib.http.listing import Page, like_pattern, parse_list
from lib.http.openapi import operation
from services.users.db import users as q
from services.users.db.models import UserRole
from services.users.pictures import picture_url
from services.users.points import PointsLookup, points_for
from services.users.schemas import ORDERBY, UserListQuery, UserOut
from services.users.user_json import user_json

routes = web.RouteTableDef()
TAGS = ["users"]
POINTS: web.AppKey[PointsLookup | None] = web.AppKey("points")


def statistics(row: q.UserStatisticsRow | None) -> dict[str, Any]:
    assert row is not None  # an aggregate without GROUP BY always returns one row
    return {
        "count": row.total,
        "age": {"min": row.min_age, "max": row.max_age, "avg": row.avg_age},
        "salary": {"min": row.min_salary, "max": row.max_salary, "avg": row.avg_salary},
    }


async def load_users(
    db: Database, lookup: PointsLookup | None, filters: dict[str, Any], page: Page
) -> tuple[list[q.ListUsersRow], q.UserStatisticsRow | None, dict[str, int] | None]:
    """The page, then its points (one batched call) while the statistics run: on ONE pooled
    connection (a request never holds two), released before waiting on the points."""
    async with db.acquire() as conn:
        rows = await q.list_users(
            conn,
            **filters,
            orderby=page.orderby,
            descending=page.sort == "desc",
            row_offset=page.offset,
            row_limit=page.limit,
        )
        points = asyncio.create_task(points_for(lookup, [str(r.id) for r in rows]))
        try:
            stats = await q.user_statistics(conn, **filters)
        except BaseException:
            points.cancel()
            raise
    return rows, stats, await points


@routes.get("/v1/users")
@operation(
    "List users",
    tags=TAGS,
    response=UserOut,
    paged=True,
    query=UserListQuery,
    roles=("MODERATOR", "ADMIN"),
    errors=(403,),
    description=(
        "meta.statistics: count, age and salary min/max/avg over the filtered set (decimal "
        "strings; null on an empty set). Each user's points come from the points service in "
        'one batched call; when it is down, points are null and meta.degraded = ["points"].'
    ),
)
async def list_users(request: web.Request) -> web.Response:
    page = parse_list(request, ORDERBY, UserListQuery)
    query: UserListQuery = page.query
    filters: dict[str, Any] = {
        "role": UserRole(query.role) if query.role is not None else None,
        "department_id": query.department_id,
        "verified": query.verified,
        "search": like_pattern(query.search),
    }
    rows, stats, points = await load_users(request.app[DB], request.app[POINTS], filters, page)
    meta: dict[str, Any] = {**page.meta(0), "statistics": statistics(stats)}
    meta["total"] = meta["statistics"]["count"]
    if points is None and rows:
        meta["degraded"] = ["points"]
    urls = [await picture_url(request.app, r.picture_key) for r in rows]
    users = [user_json(r, points, url) for r, url in zip(rows, urls, strict=True)]
    return json_response({"data": users, "meta": meta})
