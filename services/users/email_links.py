"""The single-use links of the mails (verification, password reset): issued with their mail
in the caller's transaction, and why one is refused.

The account pages (nginx/pages/) tell the three refusals apart, so each has its own problem
code (docs/api.md). Telling them apart gives nothing to a guesser: "used" and "expired"
are only ever answered to someone who holds a token we issued.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from lib.errors import BadRequest, Conflict
from services.users.auth_kit import new_secret
from services.users.db import auth as q
from services.users.db import mail as mail_q
from services.users.db.auth import LockEmailTokenRow
from services.users.db.models import EmailTokenPurpose
from services.users.mail_relay import RELAY
from services.users.settings import UsersSettings


class LinkInvalid(BadRequest):
    code, title = "LINK_INVALID", "Link not valid"


class LinkExpired(BadRequest):
    code, title = "LINK_EXPIRED", "Link expired"


class LinkUsed(Conflict):
    code, title = "LINK_USED", "Link already used"


def usable_link(token: LockEmailTokenRow | None, what: str) -> LockEmailTokenRow:
    """The locked token row when it may be used now; else the problem that says why not."""
    if token is None:
        raise LinkInvalid(f"this {what} link is not valid")
    if token.used_at is not None:
        raise LinkUsed(f"this {what} link was already used")
    if token.expired:
        raise LinkExpired(f"this {what} link has expired")
    return token


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
    """After the commit: the relay sends the new mail now rather than at its next round."""
    relay = request.app.get(RELAY)
    if relay is not None:
        relay.wake()
