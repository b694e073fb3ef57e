"""The single-use links of the mails (verification, password reset): issued with their mail
in the caller's transaction, and why one is refused.

The account pages (nginx/pages/) tell the three refusals apart, so each has its own problem
code (docs/api.md). Telling them apart gives nothing to a guesser: "used" and "expired"
are only ever answered to someone who holds a token we issued.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from lib.db.committed import after_commit
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


def reset_link(settings: UsersSettings, token: str) -> str:
    return f"{settings.public_base_url}/reset-password#token={token}"


def reset_mail(settings: UsersSettings, token: str) -> tuple[str, str]:
    minutes = settings.reset_token_ttl // 60
    link = reset_link(settings, token)
    return "Reset your Fixup password", (
        f"Someone asked to reset the password of this Fixup account.\n\n"
        f"Choose a new password within {minutes} minutes:\n{link}\n\n"
        "If it was not you, ignore this mail: the password stays as it is.\n"
    )


def taken_address_mail(settings: UsersSettings, token: str) -> tuple[str, str]:
    """To the owner of an address someone registered again (ADR 0055): the answer to the
    registration said nothing, so the mail says it, to the one person who may read it, with
    a reset link (the same work as a new account's verification link: the same time)."""
    minutes = settings.reset_token_ttl // 60
    link = reset_link(settings, token)
    return "Someone tried to register with your address", (
        "Someone tried to register a new Fixup account with this email address, which "
        "already has one.\n\n"
        f"If it was you, sign in instead, or choose a new password within {minutes} "
        f"minutes:\n{link}\n\n"
        "If it was not you, ignore this mail: nothing changed.\n"
    )


async def send_token_mail(
    conn: Any,
    settings: UsersSettings,
    user_id: Any,
    email: str,
    purpose: EmailTokenPurpose,
    *,
    taken: bool = False,
) -> None:
    """A single-use token and its mail, in the caller's transaction; `taken`: the reset
    link goes in the mail telling that someone registered the address again."""
    token, token_hash = new_secret()
    if purpose is EmailTokenPurpose.VERIFY_EMAIL:
        ttl, (subject, body) = settings.verify_token_ttl, verification_mail(settings, token)
    elif taken:
        ttl, (subject, body) = settings.reset_token_ttl, taken_address_mail(settings, token)
    else:
        ttl, (subject, body) = settings.reset_token_ttl, reset_mail(settings, token)
    await q.add_email_token(
        conn, user_id=user_id, purpose=purpose, token_hash=token_hash, ttl_seconds=ttl
    )
    await mail_q.enqueue_mail(conn, recipient=email, subject=subject, body=body)


def wake_relay(request: web.Request) -> None:
    """After the commit: the relay sends the new mail now rather than at its next round
    (the write's transaction is the audit layer's, lib/http/audit.py: it commits later)."""
    relay = request.app.get(RELAY)
    if relay is not None:
        after_commit(relay.wake)
