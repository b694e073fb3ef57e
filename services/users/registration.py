"""Registration and email verification (docs/api.md, "users"; ADR 0010): register, verify
the address with the mailed link, resend that link."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from lib.auth.principal import Role
from lib.errors import Conflict, FieldError, Forbidden, ValidationFailed
from lib.http.body import parse_body
from lib.http.idempotency import idempotent
from lib.http.jsonio import data
from lib.http.keys import CLIENT_IP, DB
from lib.http.openapi import operation
from lib.resilience.ratelimit import enforce
from services.users.auth_kit import AUTH_KIT, AUTH_TAGS, digest, users_settings
from services.users.auth_schemas import READ_ONLY, EmailIn, RegisterIn, TokenIn
from services.users.db import auth as q
from services.users.db import idempotency
from services.users.db.models import EmailTokenPurpose, UserRole
from services.users.email_links import send_token_mail, usable_link, wake_relay
from services.users.schemas import UserOut
from services.users.user_json import user_json

routes = web.RouteTableDef()
SELF_REGISTERED = (Role.CUSTOMER, Role.PROVIDER)


@routes.post("/v1/auth/register")
@idempotent(idempotency)
@operation(
    "Register",
    tags=AUTH_TAGS,
    anonymous=True,
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
    kit, settings = request.app[AUTH_KIT], users_settings(request)
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
    tags=AUTH_TAGS,
    anonymous=True,
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
    tags=AUTH_TAGS,
    anonymous=True,
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
                conn, users_settings(request), user.id, user.email, EmailTokenPurpose.VERIFY_EMAIL
            )
    wake_relay(request)
    return web.Response(status=204)
