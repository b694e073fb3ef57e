"""Registration and email verification (docs/api.md, "users"; ADR 0010): register, verify
the address with the mailed link, resend that link."""

from __future__ import annotations

import uuid

import asyncpg
from aiohttp import web

from lib.auth.principal import Role
from lib.errors import FieldError, Forbidden, ValidationFailed
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
from services.users.db import mail as mail_q
from services.users.db.models import EmailTokenPurpose, UserRole
from services.users.email_links import (
    send_token_mail,
    usable_link,
    wake_relay,
)
from services.users.password_screen import screen
from services.users.schemas import UserOut
from services.users.user_json import user_json

routes = web.RouteTableDef()
SELF_REGISTERED = (Role.CUSTOMER, Role.PROVIDER)


@routes.post("/v1/auth/register")
@operation(
    "Register",
    tags=AUTH_TAGS,
    anonymous=True,
    response=UserOut,
    status=201,
    body=RegisterIn,
    errors=(403, 503),
    idempotent=True,
    description=(
        "Creates a CUSTOMER or PROVIDER (a PROVIDER must give personal_id_number: stored "
        "AES-GCM encrypted, never returned) and mails a verification link (24 h). An email "
        "that has an account gets the same 201, in the same time, with an id that names "
        "nothing, and its owner a mail saying someone tried (ADR 0055): the answer never "
        "tells whether an address is registered. Rate limited per client IP."
    ),
)
@idempotent(idempotency)
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
    screen("password", body.password, body.email, body.first_name, body.last_name)
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
        user = await already_registered(request, body)
    wake_relay(request)
    # a new account has no picture, and no points yet
    location = {"Location": f"/v1/users/{user.id}"}
    return data(user_json(user, None, None), status=201, headers=location)


async def already_registered(request: web.Request, body: RegisterIn) -> q.RegisterUserRow:
    """The address has an account: its owner is told by mail, and the caller gets what a
    new account's registration answers, with an id that names no account (ADR 0055)."""
    async with request.app[DB].transaction() as conn:
        owner = await q.login_candidate(conn, email=body.email)
        if owner is not None:  # else a deleted account's: nobody to tell
            await send_token_mail(
                conn,
                users_settings(request),
                owner.id,
                owner.email,
                EmailTokenPurpose.PASSWORD_RESET,
                taken=True,
            )
        now = await q.database_clock(conn)
    assert now is not None  # SELECT without FROM: always a row
    return q.RegisterUserRow(
        id=uuid.uuid4(),
        email=body.email,
        first_name=body.first_name,
        last_name=body.last_name,
        phone_number=body.phone_number,
        role=UserRole(body.role.value),
        verified=False,
        department_id=None,
        age=None,
        salary=None,
        version=1,
        created_at=now,
    )


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
        await mail_q.commit_without_waiting(conn)  # the same time with or without a mail
        user = await q.login_candidate(conn, email=body.email)
        if user is not None and not user.verified:
            await send_token_mail(
                conn, users_settings(request), user.id, user.email, EmailTokenPurpose.VERIFY_EMAIL
            )
    wake_relay(request)
    return web.Response(status=204)
