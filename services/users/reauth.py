"""Re-authentication (ADR 0055): a sensitive action - a password change, an account's
deletion, ending a session or every other one, a second factor's or a passkey's change - needs a
session that proved who it is within REAUTH_MAX_AGE seconds: its login, or a later
`POST /v1/auth/reauth`. The time is the session's (its refresh family's authenticated_at,
on the database's clock); the access token names the session (`sid`), so a refresh keeps
the time and nothing in the token has to be trusted for it.

`requires_recent_auth` guards a handler (under `@operation`); `mark_reauthenticated` is
what another way of proving it (a passkey, a second factor) calls once it has checked one.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from lib.auth.principal import Principal
from lib.db.runtime import PgConn
from lib.errors import FieldError, Forbidden, Unauthorized, ValidationFailed
from lib.http.access import EVERY_ROLE
from lib.http.body import parse_body
from lib.http.guards import authenticated
from lib.http.keys import DB
from lib.http.openapi import operation
from lib.resilience.ratelimit import enforce
from services.users.auth_kit import AUTH_KIT, AUTH_TAGS, users_settings
from services.users.auth_schemas import ReauthIn
from services.users.db import auth as q
from services.users.db import users as users_q

routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STALE = "this action needs a recent sign-in: POST /v1/auth/reauth with the password, then retry"


class ReauthenticationRequired(Forbidden):
    """403 `REAUTHENTICATION_REQUIRED` (type .../problems/reauthentication-required)."""

    code, title = "REAUTHENTICATION_REQUIRED", "Reauthentication required"


async def check_recent_auth(request: web.Request) -> Principal:
    """The caller's principal when its session proved who it is within REAUTH_MAX_AGE;
    else 403 REAUTHENTICATION_REQUIRED (a token without a session, too); 401 when the
    session has ended."""
    principal = authenticated(request)
    if principal.session_id is None:
        raise ReauthenticationRequired(STALE)
    async with request.app[DB].acquire() as conn:
        recent = await q.session_recently_authenticated(
            conn,
            id=principal.session_id,
            user_id=principal.user_id,
            max_age_seconds=users_settings(request).reauth_max_age,
        )
    if recent is None:
        raise Unauthorized("this session has ended")
    if not recent:
        raise ReauthenticationRequired(STALE)
    return principal


def requires_recent_auth(handler: Handler) -> Handler:
    """Guard a handler with `check_recent_auth` (put it under `@operation`, which checks
    the token and the role first, and declare 403 in its errors)."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        await check_recent_auth(request)
        return await handler(request)

    return guarded


async def mark_reauthenticated(conn: PgConn, principal: Principal) -> None:
    """The caller's session proved who it is now; 401 when it has ended (or has none)."""
    if principal.session_id is None or not await q.mark_reauthenticated(
        conn, id=principal.session_id, user_id=principal.user_id
    ):
        raise Unauthorized("this session has ended")


@routes.post("/v1/auth/reauth")
@operation(
    "Re-authenticate",
    tags=AUTH_TAGS,
    status=204,
    body=ReauthIn,
    roles=EVERY_ROLE,
    errors=(400, 429, 503),
    description="The account's password again: the caller's session counts as freshly "
    "signed in for REAUTH_MAX_AGE seconds (default 300), which a password change, the "
    "account's deletion, ending sessions, adding or removing a passkey and enrolling, "
    "confirming or removing the second factor need (else 403 REAUTHENTICATION_REQUIRED). "
    "A wrong password: 400 naming the field; attempts share the login's per-account limit "
    "(429; 503 when it cannot be checked). 401 when the session has ended.",
)
async def reauth(request: web.Request) -> web.Response:
    principal = authenticated(request)
    body = await parse_body(request, ReauthIn)
    kit = request.app[AUTH_KIT]
    async with request.app[DB].acquire() as conn:
        user = await users_q.get_user(conn, id=principal.user_id)
    if user is None or user.disabled_at is not None:
        raise Unauthorized("the account of this token no longer exists")
    await enforce(kit.account_limit, f"email:{user.email}")  # the login's budget
    # argon2 in the bounded executor (queue full: 503), with no connection held
    if not await kit.hasher.verify(user.password_hash, body.password):
        raise ValidationFailed(
            "the password is wrong", errors=[FieldError("password", "wrong password")]
        )
    async with request.app[DB].acquire() as conn:
        await mark_reauthenticated(conn, principal)
    return web.Response(status=204)
