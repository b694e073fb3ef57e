"""A recent sign-in (ADR 0055): a sensitive action - a password change, an account's
deletion, ending a session or every other one, a second factor's or a passkey's change -
needs a session that proved who it is within REAUTH_MAX_AGE seconds: its login, or a later
`POST /v1/auth/reauth` (services/users/reauth.py: the password, a code of the
authenticator app, or a passkey). The time is the session's (its refresh family's
authenticated_at, on the database's clock); the access token names the session (`sid`), so
a refresh keeps the time and nothing in the token has to be trusted for it.

`requires_recent_auth` guards a handler (under `@operation`); `mark_reauthenticated` is
what a way of proving it calls once it has checked one.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from lib.auth.principal import Principal
from lib.db.runtime import PgConn
from lib.errors import Forbidden, Unauthorized
from lib.http.guards import authenticated
from lib.http.keys import DB
from services.users.auth_kit import users_settings
from services.users.db import auth as q

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STALE = (
    "this action needs a recent sign-in: POST /v1/auth/reauth with the password, a code "
    "or a passkey, then retry"
)


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
