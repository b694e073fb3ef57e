"""The users (docs/api.md, "users"): the moderators' list with its statistics, one user
(read, PATCH, anonymising DELETE; `{id}` may be `me`) and the public provider card. The
account's other routes live by concern: registration.py, sessions.py, passwords.py,
pictures.py (app.py assembles them).

ADR 0005: a request holds at most one pooled connection and none while it waits on
another service, so the department is checked BEFORE the transaction opens, and points
are fetched after the row's connection is released.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlc_fixup_runtime import PgConn

from lib.auth.principal import Role
from lib.clients.departments import DepartmentsClient
from lib.clients.http import dependency_client
from lib.db.pool import Database
from lib.erasure import LEDGER, Entry, Then
from lib.errors import Conflict, FieldError, NotFound, ServiceUnavailable
from lib.http.access import EVERY_ROLE, SELF
from lib.http.audit import before
from lib.http.body import parse_body
from lib.http.conditional import TAG
from lib.http.cursor import ListPage, list_page
from lib.http.etag import etag, if_match_version, stale
from lib.http.guards import path_uuid
from lib.http.jsonio import data, json_response
from lib.http.keys import DB, SETTINGS
from lib.http.listing import like_pattern
from lib.http.openapi import operation
from lib.http.patch import patch_args
from lib.logging import get_logger
from services.users import facts
from services.users.access import editable, missing, visible
from services.users.db import auth as auth_q
from services.users.db import erasures as erasures_q
from services.users.db import passkeys as passkeys_q
from services.users.db import profiles as q
from services.users.db import second_factor as factors_q
from services.users.db import users as users_q
from services.users.db.models import User, UserRole
from services.users.list_stamp import UsersListStamp
from services.users.pictures import STORAGE, delete_quietly, picture_url, picture_urls
from services.users.points import POINTS, POINTS_DOWN, PointsLookup, points_for
from services.users.profile_schemas import ADMIN_ONLY, READ_ONLY, ProviderOut, UserPatch
from services.users.recent_auth import check_recent_auth
from services.users.revocations import end_sessions
from services.users.schemas import UserListMeta, UserListQuery, UserOut
from services.users.settings import UsersSettings
from services.users.user_json import user_json

log = get_logger("users.handlers")
routes = web.RouteTableDef()
UsersPage = ListPage[UserListQuery, users_q.ListUsersKey, users_q.ListUsersAfter]
TAGS = ["users"]
DEPARTMENTS: web.AppKey[DepartmentsClient] = web.AppKey("departments")


def departments_ctx(settings: UsersSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """The departments client (one session, its own breaker) for the app's lifetime."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        http = dependency_client("departments", settings)
        app[DEPARTMENTS] = DepartmentsClient(http)
        try:
            yield
        finally:
            await http.close()

    return ctx


Statistics = users_q.UserStatisticsRow | users_q.UserStatisticsSummaryRow


def statistics(row: Statistics | None) -> dict[str, Any]:
    assert row is not None  # an aggregate without GROUP BY always returns one row
    return {
        "count": row.total,
        "age": {"min": row.min_age, "max": row.max_age, "avg": row.avg_age},
        "salary": {"min": row.min_salary, "max": row.max_salary, "avg": row.avg_salary},
    }


async def load_statistics(conn: PgConn, filters: dict[str, Any]) -> Statistics | None:
    """Without a search, from the summary the writes keep (ADR 0023: a few rows, whatever
    the table's size); a free-text search cannot be pre-aggregated, so it scans the
    filtered users through the trigram index."""
    if filters["search"] is None:
        return await users_q.user_statistics_summary(
            conn,
            role=filters["role"],
            department_id=filters["department_id"],
            verified=filters["verified"],
        )
    return await users_q.user_statistics(conn, **filters)


async def load_users(
    db: Database,
    lookup: PointsLookup | None,
    filters: dict[str, Any],
    lp: UsersPage,
) -> tuple[list[users_q.ListUsersRow], Statistics | None, dict[str, int] | None]:
    """The page, then its points (one batched call) while the statistics run: on ONE pooled
    connection (a request never holds two), released before waiting on the points."""
    async with db.acquire() as conn:
        rows = await users_q.list_users(
            conn,
            **filters,
            orderby=lp.orderby,
            sort=lp.sort,
            after=lp.after,
            row_limit=lp.limit,
            row_offset=lp.offset,
        )
        points = asyncio.create_task(points_for(lookup, [str(r.id) for r in rows]))
        try:
            stats = await load_statistics(conn, filters)
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
    cursor_paged=True,
    meta=UserListMeta,
    query=UserListQuery,
    roles=("MODERATOR", "ADMIN"),
    errors=(403,),
    conditional=UsersListStamp(),
    description=(
        "meta.statistics: count, age and salary min/max/avg over the filtered set (decimal "
        "strings; null on an empty set), from a summary the writes keep (a `search` scans "
        "the matching users instead). meta.next_cursor: `?cursor=` continues after this "
        "page at the cost of the first (then meta has no `page`); null on the last page. "
        "Each user's points come from the points service in one batched call;"
        ' when it is down, points are null and meta.degraded = ["points"] (and the page'
        " has no ETag)."
    ),
)
async def list_users(request: web.Request) -> web.Response:
    lp = list_page(request, users_q.LIST_USERS_SORTING, UserListQuery)
    query = lp.query
    filters: dict[str, Any] = {
        "role": UserRole(query.role) if query.role is not None else None,
        "department_id": query.department_id,
        "verified": query.verified,
        "search": like_pattern(query.search),
    }
    lookup = None if request.get(POINTS_DOWN) else request.app[POINTS]
    rows, stats, points = await load_users(request.app[DB], lookup, filters, lp)
    summary = statistics(stats)
    meta = {**lp.meta(rows, total=summary["count"]), "statistics": summary}
    # the tag the stamp read before the page (with the page cache on, or If-None-Match);
    # a degraded page has none: it is neither kept nor answered 304 later
    tag = request.get(TAG)
    if points is None and rows:
        meta["degraded"] = ["points"]
        tag = None
    urls = await picture_urls(request.app, [r.picture_key for r in rows])
    users = [user_json(r, points, url) for r, url in zip(rows, urls, strict=True)]
    return json_response({"data": users, "meta": meta}, headers={"ETag": tag} if tag else None)


async def one_user(request: web.Request, row: User) -> web.Response:
    """{"data": <User>} with its ETag; points read after the connection went back."""
    points = await points_for(request.app[POINTS], [str(row.id)])
    url = await picture_url(request.app, row.picture_key)
    return data(user_json(row, points, url), headers={"ETag": etag(row.version)})


@routes.get(r"/v1/users/{id}")
@operation(
    "Get a user",
    tags=TAGS,
    response=UserOut,
    etag=True,
    roles=EVERY_ROLE,
    owner=SELF,
    me=True,
    any_owner=("MODERATOR", "ADMIN"),
    errors=(400, 404),
    description="`{id}` may be `me`. Anyone else than the user, a MODERATOR or an ADMIN: 404.",
)
async def get_user(request: web.Request) -> web.Response:
    principal, user_id = visible(request)
    async with request.app[DB].acquire() as conn:
        row = await users_q.get_user(conn, id=user_id)
        if row is None:
            raise await missing(conn, principal, user_id)
    return await one_user(request, row)


@routes.patch(r"/v1/users/{id}")
@operation(
    "Update a user",
    tags=TAGS,
    response=UserOut,
    etag=True,
    body=UserPatch,
    roles=EVERY_ROLE,
    owner=SELF,
    me=True,
    any_owner=("ADMIN",),
    verified=True,
    if_match=True,
    errors=(400, 403, 404, 409, 412, 428, 502, 503),
    description=(
        "Absent keeps, null clears (department_id, age, salary). `role` and `verified`: "
        "ADMIN only (403). department_id is checked with the departments service: 404 "
        "naming it when unknown, 409 when archived (ADR 0058), 503 CIRCUIT_OPEN when "
        "departments is down, 502 DEPENDENCY_REFUSED when it refuses the forwarded token."
    ),
)
async def update_user(request: web.Request) -> web.Response:
    principal, user_id = editable(request)
    version = if_match_version(request)
    forbidden = READ_ONLY if principal.role is Role.ADMIN else READ_ONLY | ADMIN_ONLY
    body = await parse_body(request, UserPatch, forbidden=forbidden)
    department = body.department_id
    # checked before any connection is taken (never hold one while calling a service)
    if department is not None:
        archived = await request.app[DEPARTMENTS].archived(department, caller=request)
        if archived is None:
            raise NotFound(
                f"no department {department}",
                errors=[FieldError("department_id", f"unknown department {department}")],
            )
        if archived:
            raise Conflict(
                f"the department {department} is archived",
                errors=[FieldError("department_id", f"archived department {department}")],
            )
    async with request.app[DB].transaction() as conn:
        before(request, await users_q.get_user(conn, id=user_id))  # its event's
        row = await q.update_profile(conn, id=user_id, version=version, **patch_args(body))
        if row is None:
            current = await users_q.get_user(conn, id=user_id)
            if current is None:
                raise await missing(conn, principal, user_id)
            raise stale(current.version)
    return await one_user(request, row)


@routes.delete(r"/v1/users/{id}")
@operation(
    "Delete (anonymise) a user",
    tags=TAGS,
    status=204,
    roles=EVERY_ROLE,
    owner=SELF,
    me=True,
    any_owner=("ADMIN",),
    if_match=True,
    errors=(400, 403, 404, 412, 428, 503),
    description=(
        "The erasure is first written to the erasure ledger (503 when it cannot be: "
        "nothing changed, try again), then applied here: personal fields scrubbed, login "
        "disabled, every refresh family and access token revoked (401 everywhere within "
        "seconds), the picture deleted; the id stays (orders, chat and points keep it). "
        "Every other service applies it from the ledger within ERASURE_INTERVAL, as the "
        'retention table says (docs/operations.md, "Data retention"), and again after any '
        "restore of its database. One's own account needs a recent sign-in (403 "
        "REAUTHENTICATION_REQUIRED: POST /v1/auth/reauth). A 503 after the ledger write "
        "(Redis down: the revocation cannot be recorded) still erases: this service "
        "applies the entry from the ledger once Redis is back."
    ),
)
async def delete_user(request: web.Request) -> web.Response:
    principal, user_id = editable(request)
    if user_id == principal.user_id:
        await check_recent_auth(request)
    version = if_match_version(request)
    async with request.app[DB].acquire() as conn:
        current = await users_q.get_user(conn, id=user_id)
        if current is None:
            raise await missing(conn, principal, user_id)
    if current.version != version:
        raise stale(current.version)
    before(request, current)  # its event's
    entry = Entry(datetime.now(UTC), user_id)
    try:  # no connection held: object storage may take its timeout
        await request.app[LEDGER].record(entry)
    except Exception as exc:  # botocore's errors, OSError: whichever, nothing changed
        log.warning("erasure_ledger_failed", error=type(exc).__name__)
        raise ServiceUnavailable("the erasure could not be recorded; try again") from None
    async with request.app[DB].transaction() as conn:
        await erasures_q.record_erasure(conn, user_id=user_id, ledgered_at=entry.at)
        then = await erase(request.app, conn, user_id)  # Redis down: 503, applied later
    await then()
    return web.Response(status=204)


async def erase(app: web.Application, conn: PgConn, user_id: uuid.UUID) -> Then:
    """A person's erasure in the users database (DELETE, and the erasure consumer after a
    restore; docs/operations.md "Data retention"); then the picture's object is deleted."""
    picture_key = await q.erase_user(conn, id=user_id)
    await q.delete_provider_details(conn, user_id=user_id)
    await passkeys_q.erase_passkeys(conn, user_id=user_id)
    await factors_q.delete_totp(conn, user_id=user_id)
    await factors_q.delete_recovery_codes(conn, user_id=user_id)
    await auth_q.revoke_user_families(conn, user_id=user_id, reason="account deleted")
    await end_sessions(app, conn, user_id)
    facts.REVOCATIONS.count(app[SETTINGS].service, reason="account_deleted")
    return functools.partial(delete_quietly, app[STORAGE], picture_key)


@routes.get(r"/v1/providers/{id}")
@operation("Get a provider", tags=TAGS, response=ProviderOut, errors=(400, 404))
async def get_provider(request: web.Request) -> web.Response:
    provider_id = path_uuid(request)
    async with request.app[DB].acquire() as conn:
        row = await q.get_provider(conn, id=provider_id)
    if row is None:
        raise NotFound("no such provider")
    return data(
        {
            "id": row.id,
            "first_name": row.first_name,
            "last_name": row.last_name,
            "picture_url": await picture_url(request.app, row.picture_key),
            "department_id": row.department_id,
        }
    )
