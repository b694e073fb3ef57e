"""Re-authentication (ADR 0055): `POST /v1/auth/reauth` makes the caller's session recent
(services/users/recent_auth.py) with one proof of who it is: the password, a code of the
authenticator app (for an account with one; ADR 0054's check, a replayed code refused), or
an assertion of one of the account's passkeys (ADR 0053's check, for a challenge of
`POST /v1/auth/passkey/options`). Every attempt spends the login's per-account budget."""

from __future__ import annotations

from aiohttp import web
from webauthn.helpers.exceptions import WebAuthnException

from lib.errors import FieldError, Unauthorized, ValidationFailed
from lib.http.access import EVERY_ROLE
from lib.http.body import parse_body
from lib.http.guards import authenticated
from lib.http.keys import DB
from lib.http.openapi import operation
from lib.resilience.ratelimit import enforce
from services.users.access import own_account
from services.users.auth_kit import AUTH_KIT, AUTH_TAGS
from services.users.auth_schemas import ReauthIn
from services.users.passkeys import PasskeyRefused, verified_passkey_user
from services.users.recent_auth import mark_reauthenticated
from services.users.totp import CodeInvalid, accept_code

routes = web.RouteTableDef()


@routes.post("/v1/auth/reauth")
@operation(
    "Re-authenticate",
    tags=AUTH_TAGS,
    status=204,
    body=ReauthIn,
    roles=EVERY_ROLE,
    errors=(400, 429, 503),
    description="One proof of who the caller is: the account's `password`, a `code` of its "
    "authenticator app, or a passkey's `credential` (navigator.credentials.get() for the "
    "options of POST /v1/auth/passkey/options). The caller's session then counts as freshly "
    "signed in for REAUTH_MAX_AGE seconds (default 300), which a password change, the "
    "account's deletion, ending sessions, adding or removing a passkey and enrolling, "
    "confirming or removing the second factor need (else 403 REAUTHENTICATION_REQUIRED). "
    "A wrong password: 400 naming the field; a wrong or already used code, or none "
    "enrolled: 400 CODE_INVALID; a passkey not accepted (another account's, a used "
    "challenge): 400 PASSKEY_REFUSED. Attempts share the login's per-account limit (429; "
    "503 when it cannot be checked). 401 when the session has ended.",
)
async def reauth(request: web.Request) -> web.Response:
    principal = authenticated(request)
    body = await parse_body(request, ReauthIn)
    kit = request.app[AUTH_KIT]
    async with request.app[DB].acquire() as conn:
        user = await own_account(conn, principal)
    await enforce(kit.account_limit, f"email:{user.email}")  # the login's budget
    if body.credential is not None:
        try:
            owner = await verified_passkey_user(request, body.credential)
        except (WebAuthnException, ValueError, Unauthorized):
            owner = None
        if owner is None or owner.id != user.id:
            raise PasskeyRefused("the passkey was not accepted: not one of this account's")
    elif body.code is not None:
        async with request.app[DB].transaction() as conn:
            if not await accept_code(request, conn, user.id, body.code, confirmed=True):
                raise CodeInvalid("the code is not valid now (or no authenticator app)")
    # argon2 in the bounded executor (queue full: 503), with no connection held
    elif not await kit.hasher.verify(user.password_hash, body.password or ""):
        raise ValidationFailed(
            "the password is wrong", errors=[FieldError("password", "wrong password")]
        )
    async with request.app[DB].acquire() as conn:
        await mark_reauthenticated(conn, principal)
    return web.Response(status=204)
