"""What a password sign-in owes when the account has a second factor, or must have one
(SECOND_FACTOR_ROLES): no session yet, but a 401 SECOND_FACTOR_REQUIRED whose `challenge`
(single use, SECOND_FACTOR_CHALLENGE_TTL seconds, stored as its SHA-256 with the password
hash the sign-in checked) the code completes at POST /v1/auth/second-factor (ADR 0054)."""

from __future__ import annotations

from aiohttp import web

from lib.auth.principal import Role
from lib.errors import AppError
from lib.http.keys import DB
from services.users.auth_kit import new_secret, users_settings
from services.users.db import second_factor as q
from services.users.db.auth import LoginCandidateRow
from services.users.db.models import SecondFactorStep


class SecondFactorRequired(AppError):
    status, code, title = 401, "SECOND_FACTOR_REQUIRED", "Second factor required"


async def owed(request: web.Request, user: LoginCandidateRow) -> None:
    """Return when the password alone signs `user` in; else raise the challenge."""
    settings = users_settings(request)
    async with request.app[DB].acquire() as conn:
        factor = await q.totp_of(conn, user_id=user.id)
        enrolled = factor is not None and factor.confirmed_at is not None
        if not enrolled and Role(user.role.value) not in settings.second_factor_roles:
            return
        step = SecondFactorStep.VERIFY if enrolled else SecondFactorStep.ENROL
        token, token_hash = new_secret()
        await q.drop_expired_second_factor_challenges(conn)
        await q.add_second_factor_challenge(
            conn,
            token_hash=token_hash,
            user_id=user.id,
            step=step,
            password_hash=user.password_hash,
            ttl_seconds=settings.second_factor_challenge_ttl,
        )
    what = "a code of your authenticator app" if enrolled else "an authenticator app enrolled"
    raise SecondFactorRequired(
        f"this account signs in with {what}: POST /v1/auth/second-factor"
        + ("" if enrolled else "/enrol first"),
        extensions={
            "challenge": token,
            "step": "totp" if enrolled else "enrol",
            "expires_in": settings.second_factor_challenge_ttl,
        },
        headers={"WWW-Authenticate": 'Bearer realm="fixup"', "Cache-Control": "no-store"},
    )
