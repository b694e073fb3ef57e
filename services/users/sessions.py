"""Sessions (docs/api.md, "users"; ADR 0010): log in, refresh with rotation and reuse
detection, log out. A session is a refresh family: each refresh token works once, and a
used one presented again revokes its whole family."""

from __future__ import annotations

import uuid

from aiohttp import web

from lib.errors import Forbidden, RateLimited, Unauthorized
from lib.http.body import parse_body
from lib.http.jsonio import data
from lib.http.keys import CLIENT_IP, DB
from lib.http.openapi import operation
from lib.resilience.ratelimit import enforce
from services.users import second_factor
from services.users.auth_kit import AUTH_KIT, AUTH_TAGS, digest, new_secret, users_settings
from services.users.auth_schemas import LoginIn, RefreshIn, TokenPair
from services.users.db import auth as q
from services.users.facts import LOGINS, REFRESH_REUSE, REVOCATIONS
from services.users.session_list import SESSION_HEADERS, coarse_address, user_agent

routes = web.RouteTableDef()
ACCESS_COOKIE = "fixup_access"
REFRESH_COOKIE = "fixup_refresh"
REFRESH_COOKIE_PATH = "/api/users/v1/auth"  # the public path, through NGINX


def token_response(request: web.Request, access: str, refresh: str) -> web.Response:
    settings = users_settings(request)
    response = data(
        {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": settings.access_token_ttl,
        }
    )
    response.headers["Cache-Control"] = "no-store"
    for name, value, path, max_age in (
        (ACCESS_COOKIE, access, "/", settings.access_token_ttl),
        (REFRESH_COOKIE, refresh, REFRESH_COOKIE_PATH, settings.refresh_token_ttl),
    ):
        response.set_cookie(
            name,
            value,
            path=path,
            max_age=max_age,
            httponly=True,
            secure=settings.cookie_secure,
            samesite="Strict",
        )
    return response


async def start_session(request: web.Request, user: q.LoginCandidateRow) -> web.Response:
    """A new refresh family with its first token, and an access token, while the account
    still has the password just checked. The access token is signed BEFORE the session is
    written: a reset or deletion that commits after the session ends it, and its revocation
    time is later than the token's iat, so the token is void too (ADR 0010)."""
    refresh, refresh_hash = new_secret()
    family_id = uuid.uuid4()
    settings = users_settings(request)
    async with request.app[DB].acquire() as conn:
        kit = request.app[AUTH_KIT]
        access = await kit.issue(conn, user.id, user.role, user.verified, family_id)
        started = await q.start_session(
            conn,
            family_id=family_id,
            user_id=user.id,
            user_agent=user_agent(request),
            address=coarse_address(request[CLIENT_IP]),
            password_hash=user.password_hash,
            token_hash=refresh_hash,
            ttl_seconds=min(settings.refresh_token_ttl, settings.session_max_lifetime),
        )
    if not started:  # the password changed (or the account went) during the hash check
        raise Unauthorized("wrong email or password")
    LOGINS.count(users_settings(request).service, outcome="ok")
    return token_response(request, access, refresh)


@routes.post("/v1/auth/login")
@operation(
    "Log in",
    tags=AUTH_TAGS,
    anonymous=True,
    response=TokenPair,
    body=LoginIn,
    headers=SESSION_HEADERS,
    errors=(401, 503),
    description="Answers the token pair and sets the cookies fixup_access (Path=/) and "
    "fixup_refresh (Path=/api/users/v1/auth), HttpOnly, Secure, SameSite=Strict. An unknown "
    "email and a wrong password get the same 401 in about the same time. Attempts are "
    "limited per email and per client IP (429); per email across every replica, so a 503 "
    "when the shared limit cannot be checked (Redis unreachable), never an unlimited try. "
    "An account with a second factor (or whose role must have one) gets 401 "
    "SECOND_FACTOR_REQUIRED instead, its extension members `challenge`, `step` (totp: "
    "a code; enrol: POST /v1/auth/second-factor/enrol first) and `expires_in`: POST "
    "/v1/auth/second-factor completes it.",
)
async def login(request: web.Request) -> web.Response:
    kit = request.app[AUTH_KIT]
    user_agent(request)  # a bad header: 400 before all else
    body = await parse_body(request, LoginIn)
    service = users_settings(request).service
    try:
        await enforce(kit.login_limit, f"ip:{request[CLIENT_IP]}")
        await enforce(kit.account_limit, f"email:{body.email}")
    except RateLimited:
        LOGINS.count(service, outcome="locked")
        raise
    async with request.app[DB].acquire() as conn:
        user = await q.login_candidate(conn, email=body.email)
    # the connection is back in the pool while argon2 runs
    try:
        if not await kit.hasher.verify(user.password_hash if user else None, body.password):
            raise Unauthorized("wrong email or password")
        assert user is not None
        await second_factor.owed(request, user)  # 401 SECOND_FACTOR_REQUIRED (ADR 0054)
        return await start_session(request, user)
    except Unauthorized:
        LOGINS.count(service, outcome="failed")
        raise


def presented_refresh_token(request: web.Request, body: RefreshIn | None) -> str:
    """From the body, else the cookie; a cookie-borne write needs an allowed Origin."""
    if body is not None and body.refresh_token is not None:
        return body.refresh_token
    cookie = request.cookies.get(REFRESH_COOKIE)
    if not cookie:
        raise Unauthorized("no refresh token (body refresh_token or the fixup_refresh cookie)")
    # no Origin (None) is never an allowed one
    if request.headers.get("Origin") not in users_settings(request).cors_allow_origins:
        raise Forbidden("a cookie-authenticated write needs an allowed Origin")
    return cookie


async def refresh_body(request: web.Request) -> RefreshIn | None:
    return await parse_body(request, RefreshIn) if request.body_exists else None


@routes.post("/v1/auth/refresh")
@operation(
    "Refresh the tokens",
    tags=AUTH_TAGS,
    anonymous=True,
    response=TokenPair,
    body=RefreshIn,
    errors=(401, 403),
    description="The refresh token from the body or the fixup_refresh cookie (then Origin "
    "must be allowed, else 403). Each refresh token works once: the answer is a new pair, "
    "and presenting a used one revokes its whole family (every later refresh of it: 401). "
    "A session refreshes for SESSION_MAX_LIFETIME seconds from its sign-in (30 days), then "
    "401: sign in again.",
)
async def refresh(request: web.Request) -> web.Response:
    token = presented_refresh_token(request, await refresh_body(request))
    settings = users_settings(request)
    new_token, new_hash = new_secret()
    async with request.app[DB].transaction() as conn:
        row = await q.lock_refresh_token(conn, token_hash=digest(token))
        access: str | None = None  # None: refused
        if row is None or row.revoked_at is not None:
            pass  # unknown, or its session has ended
        elif row.used_at is not None:
            # a replay: the token was stolen or the client is confused; end the session
            await q.revoke_family(conn, reason="refresh token reused", id=row.family_id)
            REFRESH_REUSE.count(settings.service)  # counted once the revocation commits
            REVOCATIONS.count(settings.service, reason="refresh_reuse")
        elif row.expired or row.disabled_at is not None:
            pass  # expired, or the account is gone
        elif not await q.add_refresh_token(
            conn,
            family_id=row.family_id,
            token_hash=new_hash,
            ttl_seconds=settings.refresh_token_ttl,
            max_lifetime_seconds=settings.session_max_lifetime,
        ):  # the session outlived SESSION_MAX_LIFETIME: it ends (and lists no more)
            await q.revoke_family(conn, reason="session lifetime ended", id=row.family_id)
        else:
            await q.mark_refresh_token_used(conn, id=row.id)
            await q.touch_family(conn, id=row.family_id)
            # signed before the commit: an end of every session that waited for the
            # family's lock revokes from a later time than this token's iat (ADR 0010)
            kit = request.app[AUTH_KIT]
            access = await kit.issue(conn, row.user_id, row.role, row.verified, row.family_id)
    if access is None:  # raised after the commit: a revocation must stick
        raise Unauthorized("invalid refresh token")
    return token_response(request, access, new_token)


@routes.post("/v1/auth/logout")
@operation(
    "Log out",
    tags=AUTH_TAGS,
    anonymous=True,
    status=204,
    body=RefreshIn,
    errors=(401, 403),
    description="Revokes the family of the refresh token (body or cookie) and clears both "
    "cookies. An unknown or already revoked token: 204 as well.",
)
async def logout(request: web.Request) -> web.Response:
    token = presented_refresh_token(request, await refresh_body(request))
    async with request.app[DB].transaction() as conn:
        row = await q.lock_refresh_token(conn, token_hash=digest(token))
        if row is not None and await q.revoke_family(conn, reason="logout", id=row.family_id):
            REVOCATIONS.count(users_settings(request).service, reason="logout")
    response = web.Response(status=204)
    response.del_cookie(ACCESS_COOKIE, path="/")
    response.del_cookie(REFRESH_COOKIE, path=REFRESH_COOKIE_PATH)
    return response
