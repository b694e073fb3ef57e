"""The /v1/auth routes (docs/api.md, "users"; ADR 0010): registration, email verification,
login, refresh token rotation with reuse detection, logout, password reset.

Rules this module keeps:
- argon2id never runs on the event loop nor while the request holds a pooled connection
  (except inside an idempotent registration, whose decorator holds one for the whole
  handler): `BoundedHasher`, queue full -> 503.
- Refresh and email tokens are 32 random bytes; only their SHA-256 is stored.
- Mail is an outbox row in the transaction that causes it; the relay sends it later.
- The personal id number is encrypted before it leaves this module and never logged.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web

from lib.auth.passwords import BoundedHasher, make_hasher
from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from lib.crypto import FieldCipher
from lib.errors import (
    Conflict,
    FieldError,
    Forbidden,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
)
from lib.http.body import parse_body
from lib.http.idempotency import idempotent
from lib.http.jsonio import data
from lib.http.keys import CLIENT_IP, DB, LIMITS, REVOCATIONS, SETTINGS
from lib.http.openapi import operation
from lib.logging import get_logger
from lib.resilience.ratelimit import RateLimiter, enforce, make_rate_limiter
from services.users.auth_schemas import (
    READ_ONLY,
    EmailIn,
    LoginIn,
    RefreshIn,
    RegisterIn,
    ResetConfirmIn,
    TokenIn,
    TokenPair,
)
from services.users.db import auth as q
from services.users.db import idempotency
from services.users.db import mail as mail_q
from services.users.db.models import EmailTokenPurpose, UserRole
from services.users.email_links import LinkInvalid, usable_link
from services.users.mail_relay import RELAY
from services.users.schemas import UserOut
from services.users.settings import UsersSettings
from services.users.user_json import user_json

log = get_logger("services.users.auth")
routes = web.RouteTableDef()
TAGS = ["auth"]
ACCESS_COOKIE = "fixup_access"
REFRESH_COOKIE = "fixup_refresh"
REFRESH_COOKIE_PATH = "/api/users/v1/auth"  # the public path, through NGINX
SELF_REGISTERED = (Role.CUSTOMER, Role.PROVIDER)


@dataclass
class AuthKit:
    """What the auth routes share in one process (opened by `auth_ctx`)."""

    hasher: BoundedHasher
    signer: TokenSigner | None  # None: no JWT_PRIVATE_KEY, no sessions (503)
    cipher: FieldCipher | None  # None: no ENCRYPTION_KEY, no PROVIDER registration (503)
    login_limit: RateLimiter  # keyed per email and per IP
    register_limit: RateLimiter  # per IP
    mail_limit: RateLimiter  # resend-verification and password-reset, per email

    def issue(self, user_id: Any, role: str, verified: bool) -> str:
        if self.signer is None:
            raise ServiceUnavailable("sign-in is not configured (JWT_PRIVATE_KEY)")
        return self.signer.issue(user_id, role, verified)[0]

    def seal(self, personal_id: str, user_id: uuid.UUID) -> bytes:
        if self.cipher is None:
            raise ServiceUnavailable("provider registration is not configured (ENCRYPTION_KEY)")
        return self.cipher.encrypt(personal_id, associated=user_id.bytes)


AUTH_KIT: web.AppKey[AuthKit] = web.AppKey("auth_kit", AuthKit)


def auth_ctx(settings: UsersSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        private_key = settings.private_key_pem()
        key = settings.encryption_key.get_secret_value()
        if not private_key or not key:  # the service still serves what needs neither
            log.warning(
                "auth_not_configured",
                missing=[
                    n
                    for n, v in (("JWT_PRIVATE_KEY", private_key), ("ENCRYPTION_KEY", key))
                    if not v
                ],
            )
        store = app[LIMITS].store  # Redis with a per-process fallback, or None: memory
        hasher = BoundedHasher(
            make_hasher(
                settings.argon2_time_cost, settings.argon2_memory_cost, settings.argon2_parallelism
            ),
            workers=settings.argon2_workers,
            queue=settings.argon2_queue,
            priority=settings.argon2_priority,
        )
        app[AUTH_KIT] = AuthKit(
            hasher=hasher,
            signer=TokenSigner(private_key, settings.access_token_ttl) if private_key else None,
            cipher=FieldCipher(key) if key else None,
            login_limit=make_rate_limiter(
                "login", settings.login_rate, settings.login_burst, store
            ),
            register_limit=make_rate_limiter(
                "register", settings.register_rate, settings.register_burst, store
            ),
            mail_limit=make_rate_limiter("mail", settings.mail_rate, settings.mail_burst, store),
        )
        yield
        hasher.close()

    return ctx


def _settings(request: web.Request) -> UsersSettings:
    settings = request.app[SETTINGS]
    assert isinstance(settings, UsersSettings)
    return settings


def new_secret() -> tuple[str, bytes]:
    """A token to send (url-safe, 43 characters) and the digest to store."""
    token = secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def verification_mail(settings: UsersSettings, token: str) -> tuple[str, str]:
    hours = settings.verify_token_ttl // 3600
    link = f"{settings.public_base_url}/verify-email#token={token}"  # a fragment: no log
    return "Confirm your Fixup email address", (
        f"Welcome to Fixup.\n\nConfirm your email address within {hours} h:\n{link}\n\n"
        "If you did not register, ignore this mail.\n"
    )


def reset_mail(settings: UsersSettings, token: str) -> tuple[str, str]:
    minutes = settings.reset_token_ttl // 60
    link = f"{settings.public_base_url}/reset-password#token={token}"
    return "Reset your Fixup password", (
        f"Someone asked to reset the password of this Fixup account.\n\n"
        f"Choose a new password within {minutes} minutes:\n{link}\n\n"
        "If it was not you, ignore this mail: the password stays as it is.\n"
    )


async def send_token_mail(
    conn: Any,
    settings: UsersSettings,
    user_id: Any,
    email: str,
    purpose: EmailTokenPurpose,
) -> None:
    """A single-use token and its mail, in the caller's transaction."""
    token, token_hash = new_secret()
    if purpose is EmailTokenPurpose.VERIFY_EMAIL:
        ttl, (subject, body) = settings.verify_token_ttl, verification_mail(settings, token)
    else:
        ttl, (subject, body) = settings.reset_token_ttl, reset_mail(settings, token)
    await q.add_email_token(
        conn, user_id=user_id, purpose=purpose, token_hash=token_hash, ttl_seconds=ttl
    )
    await mail_q.enqueue_mail(conn, recipient=email, subject=subject, body=body)


def wake_relay(request: web.Request) -> None:
    relay = request.app.get(RELAY)
    if relay is not None:
        relay.wake()


# --- registration and email verification ------------------------------------------------


@routes.post("/v1/auth/register")
@idempotent(idempotency)
@operation(
    "Register",
    tags=TAGS,
    response=UserOut,
    status=201,
    body=RegisterIn,
    errors=(403, 409, 503),
    idempotent=True,
    description=(
        "Creates a CUSTOMER or PROVIDER (a PROVIDER must give personal_id_number: stored "
        "AES-GCM encrypted, never returned) and mails a verification link (24 h). "
        "Duplicate email: 409. Rate limited per client IP."
    ),
)
async def register(request: web.Request) -> web.Response:
    kit, settings = request.app[AUTH_KIT], _settings(request)
    await enforce(kit.register_limit, f"ip:{request[CLIENT_IP]}")
    body = await parse_body(request, RegisterIn, forbidden=READ_ONLY)
    if body.role not in SELF_REGISTERED:
        raise Forbidden(f"role {body.role} is given by an ADMIN, not chosen at registration")
    if (body.role is Role.PROVIDER) != (body.personal_id_number is not None):
        raise ValidationFailed(
            "personal_id_number is required for a PROVIDER and refused otherwise",
            errors=[FieldError("personal_id_number", "PROVIDER only, and required for one")],
        )
    password_hash = await kit.hasher.hash(body.password)
    try:
        async with request.app[DB].transaction() as conn:
            user = await q.register_user(
                conn,
                email=body.email,
                password_hash=password_hash,
                first_name=body.first_name,
                last_name=body.last_name,
                phone_number=body.phone_number,
                role=UserRole(body.role.value),
            )
            assert user is not None  # INSERT ... RETURNING
            if body.personal_id_number is not None:
                await q.add_provider_details(
                    conn,
                    user_id=user.id,
                    personal_id_encrypted=kit.seal(body.personal_id_number, user.id),
                    personal_id_last_4=body.personal_id_number[-4:],
                )
            await send_token_mail(
                conn, settings, user.id, user.email, EmailTokenPurpose.VERIFY_EMAIL
            )
    except asyncpg.UniqueViolationError:
        raise Conflict("an account with this email exists") from None
    wake_relay(request)
    # a new account has no picture, and no points yet
    location = {"Location": f"/v1/users/{user.id}"}
    return data(user_json(user, None, None), status=201, headers=location)


@routes.post("/v1/auth/verify")
@operation(
    "Verify an email address",
    tags=TAGS,
    status=204,
    body=TokenIn,
    errors=(409,),
    description="The token of the verification mail, once. Problem codes: LINK_USED (409), "
    "LINK_EXPIRED (400), LINK_INVALID (400: unknown).",
)
async def verify(request: web.Request) -> web.Response:
    body = await parse_body(request, TokenIn)
    async with request.app[DB].transaction() as conn:
        token = await q.lock_email_token(
            conn, token_hash=digest(body.token), purpose=EmailTokenPurpose.VERIFY_EMAIL
        )
        token = usable_link(token, "verification")
        await q.use_email_tokens(
            conn, user_id=token.user_id, purpose=EmailTokenPurpose.VERIFY_EMAIL
        )
        await q.mark_verified(conn, id=token.user_id)
    return web.Response(status=204)


@routes.post("/v1/auth/resend-verification")
@operation(
    "Resend the verification mail",
    tags=TAGS,
    status=204,
    body=EmailIn,
    description="204 whether or not the email belongs to an account (nothing is revealed); "
    "an unverified account gets a new link. Rate limited per email.",
)
async def resend_verification(request: web.Request) -> web.Response:
    body = await parse_body(request, EmailIn)
    await enforce(request.app[AUTH_KIT].mail_limit, f"email:{body.email}")
    async with request.app[DB].transaction() as conn:
        user = await q.login_candidate(conn, email=body.email)
        if user is not None and not user.verified:
            await send_token_mail(
                conn, _settings(request), user.id, user.email, EmailTokenPurpose.VERIFY_EMAIL
            )
    wake_relay(request)
    return web.Response(status=204)


# --- login, refresh, logout ----------------------------------------------------------------


def token_response(request: web.Request, access: str, refresh: str) -> web.Response:
    settings = _settings(request)
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
    access = request.app[AUTH_KIT].issue(user.id, user.role, user.verified)
    async with request.app[DB].acquire() as conn:
        started = await q.start_session(
            conn,
            user_id=user.id,
            password_hash=user.password_hash,
            token_hash=refresh_hash,
            ttl_seconds=_settings(request).refresh_token_ttl,
        )
    if not started:  # the password changed (or the account went) during the hash check
        raise Unauthorized("wrong email or password")
    return token_response(request, access, refresh)


@routes.post("/v1/auth/login")
@operation(
    "Log in",
    tags=TAGS,
    response=TokenPair,
    body=LoginIn,
    errors=(401, 503),
    description="Answers the token pair and sets the cookies fixup_access (Path=/) and "
    "fixup_refresh (Path=/api/users/v1/auth), HttpOnly, Secure, SameSite=Strict. An unknown "
    "email and a wrong password get the same 401 in about the same time. Attempts are "
    "limited per email and per client IP (429).",
)
async def login(request: web.Request) -> web.Response:
    kit = request.app[AUTH_KIT]
    body = await parse_body(request, LoginIn)
    await enforce(kit.login_limit, f"ip:{request[CLIENT_IP]}")
    await enforce(kit.login_limit, f"email:{body.email}")
    async with request.app[DB].acquire() as conn:
        user = await q.login_candidate(conn, email=body.email)
    # the connection is back in the pool while argon2 runs
    if not await kit.hasher.verify(user.password_hash if user else None, body.password):
        raise Unauthorized("wrong email or password")
    assert user is not None
    return await start_session(request, user)


def presented_refresh_token(request: web.Request, body: RefreshIn | None) -> str:
    """From the body, else the cookie; a cookie-borne write needs an allowed Origin."""
    if body is not None and body.refresh_token is not None:
        return body.refresh_token
    cookie = request.cookies.get(REFRESH_COOKIE, "")
    if not cookie:
        raise Unauthorized("no refresh token (body refresh_token or the fixup_refresh cookie)")
    if request.headers.get("Origin", "") not in _settings(request).cors_allow_origins:
        raise Forbidden("a cookie-authenticated write needs an allowed Origin")
    return cookie


async def refresh_body(request: web.Request) -> RefreshIn | None:
    return await parse_body(request, RefreshIn) if request.body_exists else None


@routes.post("/v1/auth/refresh")
@operation(
    "Refresh the tokens",
    tags=TAGS,
    response=TokenPair,
    body=RefreshIn,
    errors=(401, 403),
    description="The refresh token from the body or the fixup_refresh cookie (then Origin "
    "must be allowed, else 403). Each refresh token works once: the answer is a new pair, "
    "and presenting a used one revokes its whole family (every later refresh of it: 401).",
)
async def refresh(request: web.Request) -> web.Response:
    token = presented_refresh_token(request, await refresh_body(request))
    settings = _settings(request)
    new_token, new_hash = new_secret()
    async with request.app[DB].transaction() as conn:
        row = await q.lock_refresh_token(conn, token_hash=digest(token))
        if row is None:
            outcome = "unknown"
        elif row.revoked_at is not None:
            outcome = "revoked"
        elif row.used_at is not None:
            # a replay: the token was stolen or the client is confused; end the session
            await q.revoke_family(conn, reason="refresh token reused", id=row.family_id)
            outcome = "reused"
        elif row.expired or row.disabled_at is not None:
            outcome = "expired"
        else:
            await q.mark_refresh_token_used(conn, id=row.id)
            await q.add_refresh_token(
                conn,
                family_id=row.family_id,
                token_hash=new_hash,
                ttl_seconds=settings.refresh_token_ttl,
            )
            # signed before the commit: an end of every session that waited for the
            # family's lock revokes from a later time than this token's iat (ADR 0010)
            access = request.app[AUTH_KIT].issue(row.user_id, row.role, row.verified)
            outcome = "rotated"
    if outcome != "rotated":  # raised after the commit: a revocation must stick
        raise Unauthorized("invalid refresh token")
    return token_response(request, access, new_token)


@routes.post("/v1/auth/logout")
@operation(
    "Log out",
    tags=TAGS,
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
        if row is not None:
            await q.revoke_family(conn, reason="logout", id=row.family_id)
    response = web.Response(status=204)
    response.del_cookie(ACCESS_COOKIE, path="/")
    response.del_cookie(REFRESH_COOKIE, path=REFRESH_COOKIE_PATH)
    return response


# --- password reset ------------------------------------------------------------------------


@routes.post("/v1/auth/password-reset")
@operation(
    "Ask for a password reset",
    tags=TAGS,
    status=204,
    body=EmailIn,
    description="204 whether or not the email belongs to an account; an account gets a "
    "single-use link (1 h). Rate limited per email.",
)
async def password_reset(request: web.Request) -> web.Response:
    body = await parse_body(request, EmailIn)
    await enforce(request.app[AUTH_KIT].mail_limit, f"email:{body.email}")
    async with request.app[DB].transaction() as conn:
        user = await q.login_candidate(conn, email=body.email)
        if user is not None:
            await send_token_mail(
                conn, _settings(request), user.id, user.email, EmailTokenPurpose.PASSWORD_RESET
            )
    wake_relay(request)
    return web.Response(status=204)


@routes.post("/v1/auth/password-reset/confirm")
@operation(
    "Reset the password",
    tags=TAGS,
    status=204,
    body=ResetConfirmIn,
    errors=(409, 503),
    description="The token of the reset mail, once: sets the password and revokes every "
    "refresh family and access token of the account. Problem codes: LINK_USED (409), "
    "LINK_EXPIRED (400), LINK_INVALID (400: unknown); 503 when the revocation cannot be "
    "recorded (Redis down): nothing changed, try again.",
)
async def password_reset_confirm(request: web.Request) -> web.Response:
    body = await parse_body(request, ResetConfirmIn)
    password_hash = await request.app[AUTH_KIT].hasher.hash(body.new_password)
    purpose = EmailTokenPurpose.PASSWORD_RESET
    async with request.app[DB].transaction() as conn:
        token = await q.lock_email_token(conn, token_hash=digest(body.token), purpose=purpose)
        token = usable_link(token, "reset")
        if await q.set_password_hash(conn, password_hash=password_hash, id=token.user_id) == 0:
            raise LinkInvalid("this reset link is not valid")  # the account is gone
        await q.use_email_tokens(conn, user_id=token.user_id, purpose=purpose)
        await q.revoke_user_families(conn, reason="password reset", user_id=token.user_id)
        await request.app[REVOCATIONS].revoke(token.user_id)  # fails: 503, nothing changed
    return web.Response(status=204)
