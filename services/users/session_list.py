"""The sessions a person sees and ends (docs/api.md, "users"; ADR 0055): each live refresh
family with when it started and was last used, the user agent and a coarse address of its
login, and which one is the caller's; end one, or every other one.

Ending a session revokes its refresh family and, through the revocation record (ADR 0010),
every access token of the account issued until then: the access tokens of the session that
ended stop within the documented window, and the account's other sessions (the caller's
too) refresh once, their refresh tokens untouched. What the record keys is the account, so
one session's access tokens cannot be told from another's; a refresh is the price.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import asdict
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from lib.db.runtime import PgConn
from lib.errors import FieldError, NotFound, ValidationFailed
from lib.http.access import EVERY_ROLE
from lib.http.fields import UNSTORABLE_MESSAGE, storable
from lib.http.guards import authenticated, path_uuid
from lib.http.jsonio import data
from lib.http.keys import DB
from lib.http.openapi import operation
from lib.http.openapi_io import Header
from services.users import facts
from services.users.auth_kit import users_settings
from services.users.db import auth as q
from services.users.db.users import get_user
from services.users.recent_auth import check_recent_auth, requires_recent_auth
from services.users.revocations import end_sessions

routes = web.RouteTableDef()
TAGS = ["users"]
MAX_SESSIONS = 100  # listed, the most recently used first
USER_AGENT_LENGTH = 256
PREFIX = {4: 24, 6: 48}  # the coarse address: what a person recognises, not where they are
# what a route that starts a session reads besides its body (the session list shows it)
SESSION_HEADERS = (
    Header("User-Agent", "Kept with the new session (256 characters): its list shows it."),
)


class SessionOut(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime = Field(description="The latest refresh (else created_at).")
    user_agent: str | None = Field(description="The login's User-Agent (256 characters).")
    address: str | None = Field(description="The login's network: IPv4 /24, IPv6 /48.")
    current: bool = Field(description="The session of the token that asks.")


class SessionsOut(BaseModel):
    sessions: list[SessionOut] = Field(
        description=f"The live sessions, the most recently used first (at most {MAX_SESSIONS})."
    )


def coarse_address(client_ip: str) -> str | None:
    """The network of `client_ip`, IPv4 /24 or IPv6 /48 (None: not an address)."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    network = ipaddress.ip_network(f"{address}/{PREFIX[address.version]}", strict=False)
    return str(network)


def user_agent(request: web.Request) -> str | None:
    """The printable part of the User-Agent header, bounded; None when nothing is left. Not
    UTF-8 (read as lone surrogates) or a NUL: 400 naming it, which a route that starts a
    session answers before anything else (SESSION_HEADERS)."""
    raw = request.headers.get("User-Agent", "")
    if not storable(raw):
        raise ValidationFailed(
            "the User-Agent header is invalid",
            errors=[FieldError("User-Agent", UNSTORABLE_MESSAGE)],
        )
    printable = "".join(c for c in raw if c.isprintable())
    return printable[:USER_AGENT_LENGTH] or None


@routes.get("/v1/users/me/sessions")
@operation(
    "List my sessions",
    tags=TAGS,
    response=SessionsOut,
    roles=EVERY_ROLE,
    description="Every live session (refresh family) of the caller: when it started and was "
    "last refreshed, the login's user agent and coarse address (IPv4 /24, IPv6 /48), and "
    "`current` for the caller's own.",
)
async def list_sessions(request: web.Request) -> web.Response:
    principal = authenticated(request)
    async with request.app[DB].acquire() as conn:
        rows = await q.list_sessions(conn, user_id=principal.user_id, row_limit=MAX_SESSIONS)
    # the query's columns are the session's fields; `current` is the caller's own
    sessions = [{**asdict(row), "current": row.id == principal.session_id} for row in rows]
    return data({"sessions": sessions})


async def revoke_tokens(request: web.Request, conn: PgConn, user_id: uuid.UUID) -> None:
    """Every access token of the account issued until now is void (503 when Redis does not
    take it: the transaction rolls back, nothing ended)."""
    await end_sessions(request.app, conn, user_id)
    facts.REVOCATIONS.count(users_settings(request).service, reason="session_ended")


@routes.delete(r"/v1/users/me/sessions/{id}")
@operation(
    "End one of my sessions",
    tags=TAGS,
    status=204,
    roles=EVERY_ROLE,
    errors=(400, 403, 404, 503),
    description="The session's refresh tokens stop working and every access token of the "
    "account issued until now is revoked (401 everywhere within seconds; the other "
    "sessions refresh once). Needs a recent sign-in (403 REAUTHENTICATION_REQUIRED: POST "
    "/v1/auth/reauth). 404 when the caller has no such live session; 503 when the "
    "revocation cannot be recorded (Redis down): nothing changed, try again.",
)
async def end_session(request: web.Request) -> web.Response:
    session_id = path_uuid(request)  # a bad id: 400 before all else
    principal = await check_recent_auth(request)
    async with request.app[DB].transaction() as conn:
        ended = await q.end_session(
            conn, id=session_id, user_id=principal.user_id, reason="ended by its owner"
        )
        if not ended:
            raise NotFound("no such session")
        await revoke_tokens(request, conn, principal.user_id)
    return web.Response(status=204)


@routes.delete("/v1/users/me/sessions")
@operation(
    "End my other sessions",
    tags=TAGS,
    status=204,
    roles=EVERY_ROLE,
    errors=(403, 503),
    description="Every session of the caller but its own ends, and every access token of "
    "the account issued until now is revoked (the caller's session refreshes once). Needs "
    "a recent sign-in (403 REAUTHENTICATION_REQUIRED: POST /v1/auth/reauth); 503 when the "
    "revocation cannot be recorded (Redis down): nothing changed, try again.",
)
@requires_recent_auth
async def end_other_sessions(request: web.Request) -> web.Response:
    principal = authenticated(request)
    assert principal.session_id is not None  # requires_recent_auth refuses a token without
    async with request.app[DB].transaction() as conn:
        await q.end_other_sessions(
            conn,
            user_id=principal.user_id,
            keep_id=principal.session_id,
            reason="ended by another session",
        )
        await revoke_tokens(request, conn, principal.user_id)
    return web.Response(status=204)


@routes.delete(r"/v1/users/{id}/sessions")
@operation(
    "End a user's sessions",
    tags=TAGS,
    status=204,
    roles=("ADMIN",),
    errors=(400, 404, 503),
    description="ADMIN: every session of the user ends and every access token of the "
    "account issued until now is revoked (401 everywhere within seconds), as a password "
    "change does; the user signs in again. 404 when there is no such user (or it was "
    "deleted); 503 when the revocation cannot be recorded (Redis down): nothing changed, "
    "try again.",
)
async def end_users_sessions(request: web.Request) -> web.Response:
    user_id = path_uuid(request)
    async with request.app[DB].transaction() as conn:
        if await get_user(conn, id=user_id) is None:
            raise NotFound("no such user")
        await q.revoke_user_families(conn, user_id=user_id, reason="ended by an administrator")
        await revoke_tokens(request, conn, user_id)
    return web.Response(status=204)
