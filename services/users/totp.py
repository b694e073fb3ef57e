"""A second factor (docs/api.md, "users"; ADR 0054): TOTP (RFC 6238, pyotp) with recovery
codes. Enrolment gives the secret, its otpauth URI and QR code (segno, SVG) and ten
recovery codes, shown that once; the first code confirms it. The secret is sealed with the
encryption keyring, bound to the user id; a recovery code is stored as its SHA-256. A code
is accepted for the current time step or one either side (clock drift), and only for a
step later than the last accepted one: a code seen once, or an older one, never works
again. A password sign-in that owes the factor gets a challenge (second_factor.py), which
POST /v1/auth/second-factor completes with a code or a recovery code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import pyotp
import segno
from aiohttp import web

from lib.crypto import FieldCipher
from lib.db.runtime import PgConn
from lib.errors import BadRequest, Conflict, NotFound, ServiceUnavailable, Unauthorized
from lib.http.access import EVERY_ROLE, SELF
from lib.http.body import parse_body
from lib.http.guards import authenticated
from lib.http.jsonio import data
from lib.http.keys import DB
from lib.http.openapi import operation
from services.users.access import own_account
from services.users.auth_kit import AUTH_KIT, AUTH_TAGS, digest, users_settings
from services.users.auth_schemas import TokenPair
from services.users.db import second_factor as q
from services.users.db.auth import LoginCandidateRow
from services.users.db.models import SecondFactorStep
from services.users.recent_auth import check_recent_auth, requires_recent_auth
from services.users.session_list import SESSION_HEADERS, user_agent
from services.users.sessions import start_session
from services.users.totp_schemas import (
    ChallengeIn,
    CodeIn,
    SecondFactorIn,
    SecondFactorOut,
    TotpEnrolment,
)

routes = web.RouteTableDef()
TAGS = ["second factor"]
RECOVERY_CODES = 10
MAX_WRONG_CODES = 5  # a challenge's wrong codes; then it is gone (sign in again)
DRIFT_STEPS = 1  # a code of the step before or after now is accepted too


class CodeInvalid(BadRequest):
    code, title = "CODE_INVALID", "Code not valid"


def cipher(request: web.Request) -> FieldCipher:
    sealer = request.app[AUTH_KIT].cipher
    if sealer is None:
        raise ServiceUnavailable("the second factor is not configured (ENCRYPTION_KEY)")
    return sealer


def recovery_hash(user_id: uuid.UUID, code: str) -> bytes:
    """SHA-256 of the user id and the code without its dashes (120 random bits, ADR 0054)."""
    return hashlib.sha256(user_id.bytes + code.replace("-", "").lower().encode()).digest()


def new_recovery_code() -> str:
    """24 base32 characters (120 random bits: ASVS V6.5.2 lets a plain hash store a lookup
    secret of 112 bits or more) in groups of 4."""
    text = base64.b32encode(secrets.token_bytes(15)).decode().lower()
    return "-".join(text[i : i + 4] for i in range(0, 24, 4))


async def enrol(request: web.Request, conn: PgConn, user_id: uuid.UUID, email: str) -> web.Response:
    """A new enrolment of `user_id` (replacing one never confirmed) and its recovery codes,
    in the caller's transaction; 409 when one is confirmed."""
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(
        name=email, issuer_name=users_settings(request).totp_issuer
    )
    sealed = cipher(request).encrypt(secret, associated=user_id.bytes)
    if not await q.start_totp(conn, user_id=user_id, secret_encrypted=sealed):
        raise Conflict("an authenticator app is enrolled already; remove it first")
    codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
    await q.delete_recovery_codes(conn, user_id=user_id)
    await q.add_recovery_codes(
        conn, user_id=user_id, code_hashes=[recovery_hash(user_id, c) for c in codes]
    )
    body = {
        "secret": secret,
        "otpauth_uri": uri,
        "qr_svg": segno.make(uri, error="m").svg_inline(scale=4),
        "recovery_codes": codes,
    }
    return data(body, status=201, headers={"Cache-Control": "no-store"})


async def accept_code(
    request: web.Request, conn: PgConn, user_id: uuid.UUID, code: str, *, confirmed: bool
) -> bool:
    """Whether `code` is valid now for the user's enrolment (`confirmed` one, or one
    pending), for a step later than the last accepted; that step is then recorded."""
    factor = await q.lock_totp(conn, user_id=user_id)
    if factor is None or (factor.confirmed_at is not None) != confirmed:
        return False
    totp = pyotp.TOTP(cipher(request).decrypt(factor.secret_encrypted, associated=user_id.bytes))
    now = totp.timecode(datetime.now(UTC))
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if factor.last_step is not None and step <= factor.last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            await q.use_totp_step(conn, user_id=user_id, step=step)
            return True
    return False


@routes.get("/v1/users/me/second-factor")
@operation(
    "My second factor",
    tags=TAGS,
    response=SecondFactorOut,
    roles=EVERY_ROLE,
    owner=SELF,
    description="Whether an authenticator app is enrolled, the recovery codes left, and "
    "whether the account's role must sign in with one (SECOND_FACTOR_ROLES).",
)
async def my_second_factor(request: web.Request) -> web.Response:
    principal = authenticated(request)
    async with request.app[DB].acquire() as conn:
        factor = await q.totp_of(conn, user_id=principal.user_id)
        left = await q.recovery_codes_left(conn, user_id=principal.user_id)
    body: dict[str, Any] = {
        "totp": factor is not None and factor.confirmed_at is not None,
        "recovery_codes_left": left or 0,
        "required": principal.role in users_settings(request).second_factor_roles,
    }
    return data(body)


@routes.post("/v1/users/me/second-factor/totp")
@operation(
    "Enrol an authenticator app",
    tags=TAGS,
    status=201,
    response=TotpEnrolment,
    roles=EVERY_ROLE,
    owner=SELF,
    errors=(403, 409, 503),
    description="A new TOTP secret (RFC 6238: SHA-1, 6 digits, 30 s), its otpauth URI and "
    "QR code, and 10 recovery codes, shown this once. Nothing signs in with it until "
    "POST …/totp/confirm takes a first code; asked again before that, a new secret "
    "replaces it. 409 when one is confirmed already. Needs a recent sign-in (403 "
    "REAUTHENTICATION_REQUIRED: POST /v1/auth/reauth).",
)
@requires_recent_auth
async def start_enrolment(request: web.Request) -> web.Response:
    principal = authenticated(request)
    async with request.app[DB].transaction() as conn:
        user = await own_account(conn, principal)
        return await enrol(request, conn, user.id, user.email)


@routes.post("/v1/users/me/second-factor/totp/confirm")
@operation(
    "Confirm the authenticator app",
    tags=TAGS,
    status=204,
    body=CodeIn,
    roles=EVERY_ROLE,
    owner=SELF,
    errors=(400, 403, 409),
    description="The app's current code: from now on a password sign-in asks for a code. "
    "A wrong code: 400 CODE_INVALID, nothing changed; no enrolment waiting: 409. Needs a "
    "recent sign-in (403 REAUTHENTICATION_REQUIRED: POST /v1/auth/reauth).",
)
async def confirm_enrolment(request: web.Request) -> web.Response:
    body = await parse_body(request, CodeIn)  # a bad body: 400 before all else
    principal = await check_recent_auth(request)
    async with request.app[DB].transaction() as conn:
        factor = await q.totp_of(conn, user_id=principal.user_id)
        if factor is None or factor.confirmed_at is not None:
            raise Conflict("no enrolment is waiting for its first code")
        if not await accept_code(request, conn, principal.user_id, body.code, confirmed=False):
            raise CodeInvalid("the code is not valid now")
    return web.Response(status=204)


@routes.delete("/v1/users/me/second-factor")
@operation(
    "Remove the second factor",
    tags=TAGS,
    status=204,
    roles=EVERY_ROLE,
    owner=SELF,
    errors=(403, 404),
    description="The authenticator app and the recovery codes: a password signs in alone "
    "again (unless the role must have a second factor: then it enrols at the next "
    "sign-in). None enrolled: 404. Needs a recent sign-in (403 "
    "REAUTHENTICATION_REQUIRED: POST /v1/auth/reauth).",
)
@requires_recent_auth
async def remove_second_factor(request: web.Request) -> web.Response:
    principal = authenticated(request)
    async with request.app[DB].transaction() as conn:
        removed = await q.delete_totp(conn, user_id=principal.user_id)
        await q.delete_recovery_codes(conn, user_id=principal.user_id)
    if not removed:
        raise NotFound("no second factor is enrolled")
    return web.Response(status=204)


async def live_challenge(conn: PgConn, token: str) -> Any:
    row = await q.lock_second_factor_challenge(conn, token_hash=digest(token))
    if row is None or not row.live:
        raise Unauthorized("this challenge is unknown, used or expired: sign in again")
    return row


@routes.post("/v1/auth/second-factor/enrol")
@operation(
    "Enrol an authenticator app to sign in",
    tags=AUTH_TAGS,
    anonymous=True,
    status=201,
    response=TotpEnrolment,
    body=ChallengeIn,
    errors=(401, 409, 503),
    description="For a login whose problem said `step: enrol` (a role of "
    "SECOND_FACTOR_ROLES without a second factor): the same enrolment as POST "
    "/v1/users/me/second-factor/totp, for the challenge's account; then POST "
    "/v1/auth/second-factor with the challenge and a first code signs in. 401 when the "
    "challenge is unknown, used, expired or not an enrolment's.",
)
async def enrol_to_sign_in(request: web.Request) -> web.Response:
    body = await parse_body(request, ChallengeIn)
    async with request.app[DB].transaction() as conn:
        row = await live_challenge(conn, body.challenge)
        if row.step is not SecondFactorStep.ENROL:
            raise Unauthorized("this challenge asks for a code, not an enrolment")
        return await enrol(request, conn, row.user_id, row.email)


@routes.post("/v1/auth/second-factor")
@operation(
    "Sign in with the second factor",
    tags=AUTH_TAGS,
    anonymous=True,
    response=TokenPair,
    body=SecondFactorIn,
    headers=SESSION_HEADERS,
    errors=(400, 401),
    description="Completes a login that answered 401 SECOND_FACTOR_REQUIRED: its "
    "`challenge` and the app's current `code` (or, for an enrolled account, one unused "
    "`recovery_code`) → the token pair and cookies of POST /v1/auth/login. A code already "
    "accepted (or an older one) is refused. A wrong code: 400 CODE_INVALID; after 5 the "
    "challenge is gone. The challenge unknown, used or expired (SECOND_FACTOR_CHALLENGE_TTL "
    "s), or the password changed meanwhile: 401.",
)
async def complete_sign_in(request: web.Request) -> web.Response:
    # no login limit of its own: each challenge cost a limited password login and takes
    # at most MAX_WRONG_CODES codes (ADR 0054)
    user_agent(request)  # a bad header: 400 before all else
    body = await parse_body(request, SecondFactorIn)
    token_hash = digest(body.challenge)
    async with request.app[DB].transaction() as conn:
        row = await live_challenge(conn, body.challenge)
        enrolled = row.step is SecondFactorStep.VERIFY
        if body.recovery_code is not None:
            hashed = recovery_hash(row.user_id, body.recovery_code)
            ok = enrolled and bool(
                await q.use_recovery_code(conn, user_id=row.user_id, code_hash=hashed)
            )
        else:
            assert body.code is not None
            ok = await accept_code(request, conn, row.user_id, body.code, confirmed=enrolled)
        if ok or row.attempts + 1 >= MAX_WRONG_CODES:
            await q.drop_second_factor_challenge(conn, token_hash=token_hash)
        else:
            await q.count_wrong_code(conn, token_hash=token_hash)
    if not ok:  # raised after the commit: the wrong code counts
        raise CodeInvalid("the code is not valid now")
    user = LoginCandidateRow(
        id=row.user_id,
        email=row.email,
        password_hash=row.password_hash,
        role=row.role,
        verified=row.verified,
    )
    return await start_session(request, user)
