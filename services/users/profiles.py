"""One user (docs/api.md, "users"): read, PATCH, anonymising DELETE, password change, and
the public provider card. `{id}` may be `me`.

ADR 0005: a request holds at most one pooled connection and none while it waits on
another service, so the department is checked and passwords hashed BEFORE the
transaction opens, and points are fetched after the row's connection is released.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from lib.auth.principal import Role
from lib.clients.departments import DepartmentsClient
from lib.clients.http import dependency_client
from lib.errors import FieldError, NotFound, Unauthorized, ValidationFailed
from lib.http.access import EVERY_ROLE, SELF
from lib.http.body import parse_body
from lib.http.etag import etag, if_match_version, stale
from lib.http.guards import authenticated, path_uuid
from lib.http.jsonio import data
from lib.http.keys import DB, REVOCATIONS
from lib.http.openapi import operation
from lib.http.patch import patch_args
from services.users.access import editable, missing, visible
from services.users.auth import AUTH_KIT
from services.users.db import auth as auth_q
from services.users.db import profiles as q
from services.users.db import users as users_q
from services.users.db.models import User
from services.users.handlers import POINTS
from services.users.pictures import STORAGE, delete_quietly, picture_url
from services.users.points import points_for
from services.users.profile_schemas import (
    ADMIN_ONLY,
    READ_ONLY,
    PasswordChange,
    ProviderOut,
    UserPatch,
)
from services.users.schemas import UserOut
from services.users.settings import UsersSettings
from services.users.user_json import user_json

routes = web.RouteTableDef()
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
    any_owner=("ADMIN",),
    verified=True,
    if_match=True,
    errors=(400, 403, 404, 412, 428, 502, 503),
    description=(
        "Absent keeps, null clears (department_id, age, salary). `role` and `verified`: "
        "ADMIN only (403). department_id is checked with the departments service: 404 "
        "naming it when unknown, 503 CIRCUIT_OPEN when departments is down, 502 "
        "DEPENDENCY_REFUSED when it refuses the forwarded token."
    ),
)
async def update_user(request: web.Request) -> web.Response:
    principal, user_id = editable(request)
    version = if_match_version(request)
    forbidden = READ_ONLY if principal.role is Role.ADMIN else READ_ONLY | ADMIN_ONLY
    body = await parse_body(request, UserPatch, forbidden=forbidden)
    department = body.department_id
    # checked before any connection is taken (never hold one while calling a service)
    if department is not None and not await request.app[DEPARTMENTS].exists(
        department, caller=request
    ):
        raise NotFound(
            f"no department {department}",
            errors=[FieldError("department_id", f"unknown department {department}")],
        )
    async with request.app[DB].transaction() as conn:
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
    any_owner=("ADMIN",),
    if_match=True,
    errors=(400, 403, 404, 412, 428, 503),
    description=(
        "Personal fields are scrubbed, login disabled, every refresh family and access "
        "token revoked (401 everywhere within seconds) and the picture deleted; the id "
        "stays (orders, chat and points keep it). 503 when the revocation cannot be "
        "recorded (Redis down): nothing changed, try again."
    ),
)
async def delete_user(request: web.Request) -> web.Response:
    principal, user_id = editable(request)
    version = if_match_version(request)
    async with request.app[DB].transaction() as conn:
        before = await q.lock_user(conn, id=user_id)
        if before is None:
            raise await missing(conn, principal, user_id)
        if before.version != version:
            raise stale(before.version)
        await q.anonymise_user(conn, id=user_id, version=version)
        await q.delete_provider_details(conn, user_id=user_id)
        await auth_q.revoke_user_families(conn, user_id=user_id, reason="account deleted")
        await request.app[REVOCATIONS].revoke(user_id)  # fails: 503, nothing changed
    await delete_quietly(request.app[STORAGE], before.picture_key)
    return web.Response(status=204)


@routes.post("/v1/users/me/password")
@operation(
    "Change my password",
    tags=TAGS,
    status=204,
    body=PasswordChange,
    roles=EVERY_ROLE,
    owner=SELF,
    errors=(400, 503),
    description="Every refresh family and access token of the user is revoked (every "
    "session ends; 401 everywhere within seconds). 503 when the revocation cannot be "
    "recorded (Redis down): nothing changed, try again.",
)
async def change_password(request: web.Request) -> web.Response:
    principal = authenticated(request)
    body = await parse_body(request, PasswordChange)
    async with request.app[DB].acquire() as conn:
        row = await users_q.get_user(conn, id=principal.user_id)
    if row is None or row.disabled_at is not None:  # a token that outlived its account
        raise Unauthorized("the account of this token no longer exists")
    wrong = ValidationFailed(
        "the old password is wrong", errors=[FieldError("old_password", "wrong password")]
    )
    # argon2 in the bounded executor (queue full: 503), with no connection held
    hasher = request.app[AUTH_KIT].hasher
    if not await hasher.verify(row.password_hash, body.old_password):
        raise wrong
    new_hash = await hasher.hash(body.new_password)
    async with request.app[DB].transaction() as conn:
        changed = await q.change_password(
            conn, id=principal.user_id, old_hash=row.password_hash, new_hash=new_hash
        )
        if changed == 0:  # changed or disabled meanwhile: the old password is no longer it
            raise wrong
        await auth_q.revoke_user_families(
            conn, user_id=principal.user_id, reason="password changed"
        )
        await request.app[REVOCATIONS].revoke(principal.user_id)
    return web.Response(status=204)


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
