"""Passwords (docs/api.md, "users"; ADR 0010): the reset by mail (ask, then confirm with the
link) and the change by the signed-in user. Both end every session of the account: its
refresh families and, through lib/auth's revocations, its access tokens."""

from __future__ import annotations

from aiohttp import web

from lib.errors import FieldError, ValidationFailed
from lib.http.access import EVERY_ROLE, SELF
from lib.http.body import parse_body
from lib.http.guards import authenticated
from lib.http.keys import DB
from lib.http.openapi import operation
from lib.resilience.ratelimit import enforce
from services.users import facts
from services.users.access import own_account
from services.users.auth_kit import AUTH_KIT, AUTH_TAGS, digest, users_settings
from services.users.auth_schemas import EmailIn, ResetConfirmIn
from services.users.db import auth as q
from services.users.db import mail as mail_q
from services.users.db import profiles as profiles_q
from services.users.db import users as users_q
from services.users.db.models import EmailTokenPurpose
from services.users.email_links import LinkInvalid, send_token_mail, usable_link, wake_relay
from services.users.password_screen import screen
from services.users.profile_schemas import PasswordChange
from services.users.recent_auth import check_recent_auth
from services.users.revocations import end_sessions

routes = web.RouteTableDef()


@routes.post("/v1/auth/password-reset")
@operation(
    "Ask for a password reset",
    tags=AUTH_TAGS,
    anonymous=True,
    status=204,
    body=EmailIn,
    description="204 whether or not the email belongs to an account; an account gets a "
    "single-use link (1 h). Rate limited per email.",
)
async def password_reset(request: web.Request) -> web.Response:
    body = await parse_body(request, EmailIn)
    await enforce(request.app[AUTH_KIT].mail_limit, f"email:{body.email}")
    async with request.app[DB].transaction() as conn:
        await mail_q.commit_without_waiting(conn)  # the same time with or without a mail
        user = await q.login_candidate(conn, email=body.email)
        if user is not None:
            await send_token_mail(
                conn,
                users_settings(request),
                user.id,
                user.email,
                EmailTokenPurpose.PASSWORD_RESET,
            )
    wake_relay(request)
    return web.Response(status=204)


@routes.post("/v1/auth/password-reset/confirm")
@operation(
    "Reset the password",
    tags=AUTH_TAGS,
    anonymous=True,
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
    purpose = EmailTokenPurpose.PASSWORD_RESET
    async with request.app[DB].acquire() as conn:  # whose password: screened before the hash
        token = await q.lock_email_token(conn, token_hash=digest(body.token), purpose=purpose)
        user = await users_q.get_user(conn, id=usable_link(token, "reset").user_id)
    if user is not None:
        screen("new_password", body.new_password, user.email, user.first_name, user.last_name)
    password_hash = await request.app[AUTH_KIT].hasher.hash(body.new_password)
    async with request.app[DB].transaction() as conn:
        token = await q.lock_email_token(conn, token_hash=digest(body.token), purpose=purpose)
        token = usable_link(token, "reset")
        if await q.set_password_hash(conn, password_hash=password_hash, id=token.user_id) == 0:
            raise LinkInvalid("this reset link is not valid")  # the account is gone
        await q.use_email_tokens(conn, user_id=token.user_id, purpose=purpose)
        await q.revoke_user_families(conn, reason="password reset", user_id=token.user_id)
        await end_sessions(request.app, conn, token.user_id)  # fails: 503, nothing changed
        facts.REVOCATIONS.count(users_settings(request).service, reason="password_reset")
    return web.Response(status=204)


@routes.post("/v1/users/me/password")
@operation(
    "Change my password",
    tags=["users"],
    status=204,
    body=PasswordChange,
    roles=EVERY_ROLE,
    owner=SELF,
    errors=(400, 403, 503),
    description="Every refresh family and access token of the user is revoked (every "
    "session ends; 401 everywhere within seconds). Needs a recent sign-in (403 "
    "REAUTHENTICATION_REQUIRED: POST /v1/auth/reauth). 503 when the revocation cannot be "
    "recorded (Redis down): nothing changed, try again.",
)
async def change_password(request: web.Request) -> web.Response:
    principal = authenticated(request)
    body = await parse_body(request, PasswordChange)  # a bad body: 400 before all else
    await check_recent_auth(request)
    async with request.app[DB].acquire() as conn:
        row = await own_account(conn, principal)
    wrong = ValidationFailed(
        "the old password is wrong", errors=[FieldError("old_password", "wrong password")]
    )
    # argon2 in the bounded executor (queue full: 503), with no connection held
    hasher = request.app[AUTH_KIT].hasher
    if not await hasher.verify(row.password_hash, body.old_password):
        raise wrong
    screen("new_password", body.new_password, row.email, row.first_name, row.last_name)
    new_hash = await hasher.hash(body.new_password)
    async with request.app[DB].transaction() as conn:
        changed = await profiles_q.change_password(
            conn, id=principal.user_id, old_hash=row.password_hash, new_hash=new_hash
        )
        if changed == 0:  # changed or disabled meanwhile: the old password is no longer it
            raise wrong
        await q.revoke_user_families(conn, user_id=principal.user_id, reason="password changed")
        await end_sessions(request.app, conn, principal.user_id)
        facts.REVOCATIONS.count(users_settings(request).service, reason="password_changed")
    return web.Response(status=204)
