"""What guards an account, pinned exactly (the mutation tests of services/users'
registration, email_links, passwords, sessions and auth_kit run these; docs/mutation.md):
each refusal's status, problem code and detail, what a link or a refresh token may do
once and never again, what an end of every session revokes (rows and access tokens), the
token pair and its cookies to the attribute, the mails to the character, the lifetimes
written to the database. Real PostgreSQL, a local SMTP sink, argon2 at its cheapest; the
mail relay polls rarely, so a mail that arrives at once proves the handler woke it."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import os
import threading
import uuid
from email.message import Message
from typing import Any

import asyncpg
import jwt
import pytest
import redis.asyncio as aioredis
import structlog.testing
from cryptography.exceptions import InvalidTag
from prometheus_client import REGISTRY
from pydantic import SecretStr

from lib.auth.passwords import HASHING_NICENESS, MAX_NICENESS
from lib.crypto import FieldCipher, generate_key
from services.users.app import create_app
from services.users.auth_kit import AUTH_KIT
from services.users.settings import UsersSettings
from tests import pg
from tests.integration.auth_support import KEYS
from tests.integration.smtp_support import SmtpSink, mail_to, token_in
from tests.integration.users_support import SIGN_UP_PASSWORD as PASSWORD
from tests.integration.users_support import (
    blocked_on_a_lock,
    customer,
    login,
    mailing_settings,
    new_email,
    refresh,
)
from tests.servers import Servers
from tools.time_scale import scaled

ORIGIN = "https://app.fixup.test"
BASE_URL = "https://fixup.example"
ENCRYPTION_KEY = generate_key()
# distinct lifetimes, none a default: each one read back is the one the code used
ACCESS_TTL, REFRESH_TTL, VERIFY_TTL, RESET_TTL = 600, 7 * 86_400, 7200, 1800
MAIL_SOON = 8.0  # woken, the relay sends within this even on a loaded machine
NEVER = 3600.0  # the relay's poll: a mail that arrives came from a wake-up


def settings(dsn: str, smtp_port: int, **extra: Any) -> UsersSettings:
    defaults = {
        "encryption_key": SecretStr(ENCRYPTION_KEY),
        "access_token_ttl": ACCESS_TTL,
        "refresh_token_ttl": REFRESH_TTL,
        "verify_token_ttl": VERIFY_TTL,
        "reset_token_ttl": RESET_TTL,
        "public_base_url": BASE_URL,
        "cors_allow_origins": [ORIGIN],
        "mail_relay_interval": NEVER,
    }
    return mailing_settings(dsn, smtp_port, **{**defaults, **extra})


@pytest.fixture
async def client(aiohttp_client: Any, users_dsn: str, sink: SmtpSink) -> Any:
    return await aiohttp_client(create_app(settings(users_dsn, sink.port)))


async def queued_from_now(dsn: str) -> Any:
    """The database's now(): the mails queued from here on are the ones a request queued (the
    registration's own mail may still wait for its relay's delete after it was delivered)."""
    return (await pg.fetch(dsn, "SELECT now() AS now"))[0]["now"]


async def problem(resp: Any) -> tuple[int, str, str, str]:
    body = await resp.json()
    assert body["status"] == resp.status
    return resp.status, body["code"], body["title"], body["detail"]


def text_of(mail: Message) -> str:
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    return body.decode().replace("\r\n", "\n")  # SMTP's line ends


async def register(client: Any, sink: SmtpSink) -> tuple[dict[str, Any], str]:
    email = new_email()
    resp = await client.post("/v1/auth/register", json=customer(email))
    assert resp.status == 201, await resp.text()
    return (await resp.json())["data"], token_in(await mail_to(sink, email))


def claims(access: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(access, KEYS[1], algorithms=["EdDSA"], audience="fixup")
    return decoded


def bearer(access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}"}


async def lifetime(dsn: str, query: str, *args: Any) -> float:
    """Seconds between created_at and expires_at of the one row `query` selects."""
    rows = await pg.fetch(dsn, query, *args)
    assert len(rows) == 1, rows
    return float((rows[0]["expires_at"] - rows[0]["created_at"]).total_seconds())


async def every_session_ended(
    client: Any, dsn: str, user: dict[str, Any], sessions: list[dict[str, Any]], reason: str
) -> None:
    """The password is now "a new secret", and every session of `user` ended for `reason`:
    its refresh family revoked, its access token refused, the old password too."""
    families = await pg.fetch(
        dsn, "SELECT revoked_reason FROM refresh_token_families WHERE user_id = $1", user["id"]
    )
    assert [f["revoked_reason"] for f in families] == [reason] * len(sessions)
    for session in sessions:
        assert (await refresh(client, session["refresh_token"])).status == 401
        me = await client.get(f"/v1/users/{user['id']}", headers=bearer(session["access_token"]))
        assert me.status == 401
    wrong = await client.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert wrong.status == 401
    await login(client, user["email"], "a new secret")


# --- registration -----------------------------------------------------------------------


async def test_register_answers_the_new_account_and_wakes_the_relay(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    email = new_email()
    resp = await client.post("/v1/auth/register", json=customer(email.upper()))
    assert resp.status == 201, await resp.text()
    user = (await resp.json())["data"]
    assert resp.headers["Location"] == f"/v1/users/{user['id']}"
    expected = {
        "email": email,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone_number": "+44 20 7946 0000",
        "role": "CUSTOMER",
        "verified": False,
        "picture_url": None,
        "points": None,
        "version": 1,
    }
    assert {k: user[k] for k in expected} == expected
    mail = await mail_to(sink, email)  # the relay polls hourly: the handler woke it
    token = token_in(mail)
    assert (mail["Subject"], text_of(mail)) == (
        "Confirm your Fixup email address",
        "Welcome to Fixup.\n\nConfirm your email address within 2 h:\n"
        f"{BASE_URL}/verify-email#token={token}\n\n"
        "If you did not register, ignore this mail.\n",
    )
    assert len(token) == 43
    rows = await pg.fetch(
        users_dsn,
        "SELECT purpose, token_hash, used_at, created_at, expires_at FROM email_tokens "
        "WHERE user_id = $1",
        uuid.UUID(user["id"]),
    )
    assert [(r["purpose"], bytes(r["token_hash"]), r["used_at"]) for r in rows] == [
        ("VERIFY_EMAIL", hashlib.sha256(token.encode()).digest(), None)
    ]
    assert (rows[0]["expires_at"] - rows[0]["created_at"]).total_seconds() == VERIFY_TTL
    # the password given is the one stored (hashed), and logs in
    assert claims((await login(client, email))["access_token"])["verified"] is False


async def test_register_a_provider_seals_the_personal_id_to_the_account(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    email = new_email()
    body = customer(email, role="PROVIDER", personal_id_number="PID-12-345678")
    resp = await client.post("/v1/auth/register", json=body)
    text = await resp.text()
    assert resp.status == 201, text
    assert ("PID-12-345678" in text, "personal_id" in text) == (False, False)
    user_id = uuid.UUID((await resp.json())["data"]["id"])
    assert (await resp.json())["data"]["role"] == "PROVIDER"
    [row] = await pg.fetch(
        users_dsn,
        "SELECT personal_id_encrypted, personal_id_last4 FROM provider_details WHERE user_id = $1",
        user_id,
    )
    assert row["personal_id_last4"] == "5678"
    sealed = bytes(row["personal_id_encrypted"])
    cipher = FieldCipher(ENCRYPTION_KEY)
    assert cipher.decrypt(sealed, associated=user_id.bytes) == "PID-12-345678"
    with pytest.raises(InvalidTag):  # sealed to this account: another id cannot open it
        cipher.decrypt(sealed, associated=uuid.uuid4().bytes)
    await mail_to(sink, email)


async def test_a_customer_has_no_provider_details(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, _ = await register(client, sink)
    rows = await pg.fetch(
        users_dsn, "SELECT 1 FROM provider_details WHERE user_id = $1", uuid.UUID(user["id"])
    )
    assert rows == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"role": "ADMIN"}, (403, "FORBIDDEN", "Forbidden",
                             "role ADMIN is given by an ADMIN, not chosen at registration")),
        ({"role": "PROVIDER"}, (400, "VALIDATION_ERROR", "Validation failed",
                                "personal_id_number is required for a PROVIDER and refused "
                                "otherwise")),
        ({"personal_id_number": "1234-5678"}, (400, "VALIDATION_ERROR", "Validation failed",
                                               "personal_id_number is required for a "
                                               "PROVIDER and refused otherwise")),
    ],
    ids=["admin", "provider-without-id", "customer-with-id"],
)  # fmt: skip
async def test_register_refusals(
    client: Any, change: dict[str, Any], expected: tuple[int, str, str, str]
) -> None:
    email = new_email()
    resp = await client.post("/v1/auth/register", json=customer(email, **change))
    assert await problem(resp) == expected
    if expected[0] == 400:
        errors = (await resp.json())["errors"]
        assert errors == [
            {"field": "personal_id_number", "message": "PROVIDER only, and required for one"}
        ]


async def test_register_refuses_a_read_only_field(client: Any, users_dsn: str) -> None:
    email = new_email()
    resp = await client.post("/v1/auth/register", json=customer(email, verified=True))
    assert await problem(resp) == (403, "FORBIDDEN", "Forbidden", "you may not set: verified")
    assert await pg.fetch(users_dsn, "SELECT 1 FROM users WHERE email = $1", email) == []


async def test_register_a_taken_email_answers_as_a_new_one_and_changes_nothing(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    """ADR 0055: the answer tells nothing (the same 201 and shape, an id naming nothing);
    the owner, in any case of the address, gets a mail saying someone tried; the account
    stays as it was, and no second one is made."""
    user, _ = await register(client, sink)
    body = customer(user["email"].upper()) | {"first_name": "Mallory"}
    resp = await client.post("/v1/auth/register", json=body)
    assert resp.status == 201, await resp.text()
    again = (await resp.json())["data"]
    assert again.keys() == user.keys()
    assert {k for k in user if user[k] != again[k]} == {"id", "created_at", "first_name"}
    # what a new account's registration would answer: a fresh id, the name asked for, now
    assert uuid.UUID(again["id"]) != uuid.UUID(user["id"])
    assert again["first_name"] == "Mallory"
    created = datetime.datetime.fromisoformat(again["created_at"])
    assert datetime.datetime.fromisoformat(user["created_at"]) <= created
    assert created <= await queued_from_now(users_dsn)
    assert resp.headers["Location"] == f"/v1/users/{again['id']}"
    mail = await mail_to(sink, user["email"])
    assert mail["Subject"] == "Someone tried to register with your address"
    rows = await pg.fetch(
        users_dsn, "SELECT id, first_name FROM users WHERE email = $1", user["email"]
    )
    assert [(str(r["id"]), r["first_name"]) for r in rows] == [(user["id"], user["first_name"])]


async def test_the_taken_address_mail_says_it_and_its_link_resets_the_password(
    client: Any, sink: SmtpSink
) -> None:
    """ADR 0055: the owner's mail, to the character, and its link a working reset link."""
    user, _ = await register(client, sink)
    resp = await client.post("/v1/auth/register", json=customer(user["email"]))
    assert resp.status == 201, await resp.text()
    mail = await mail_to(sink, user["email"])
    token = token_in(mail)
    assert (mail["Subject"], text_of(mail)) == (
        "Someone tried to register with your address",
        "Someone tried to register a new Fixup account with this email address, which "
        "already has one.\n\n"
        "If it was you, sign in instead, or choose a new password within 30 minutes:\n"
        f"{BASE_URL}/reset-password#token={token}\n\n"
        "If it was not you, ignore this mail: nothing changed.\n",
    )
    body = {"token": token, "new_password": "a new secret"}
    assert (await client.post("/v1/auth/password-reset/confirm", json=body)).status == 204


async def test_a_login_keeps_its_agent_and_network_and_counts_one_ok(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    """The session a login starts keeps the caller's User-Agent and coarse address (what
    the session list shows), and users_logins_total{service="users", outcome="ok"} counts
    it under the service's own label."""
    user, _ = await register(client, sink)
    labels = {"service": "users", "outcome": "ok"}
    before = REGISTRY.get_sample_value("users_logins_total", labels)
    assert before is not None  # at 0 from start-up
    resp = await client.post(
        "/v1/auth/login",
        json={"email": user["email"], "password": PASSWORD},
        headers={"User-Agent": "FixupGuards/1.0", "X-Real-IP": "203.0.113.77"},
    )
    assert resp.status == 200, await resp.text()
    families = await pg.fetch(
        users_dsn,
        "SELECT user_agent, address FROM refresh_token_families WHERE user_id = $1",
        uuid.UUID(user["id"]),
    )
    assert [(f["user_agent"], f["address"]) for f in families] == [
        ("FixupGuards/1.0", "203.0.113.0/24")  # X-Real-IP: the default trusts loopback
    ]
    assert REGISTRY.get_sample_value("users_logins_total", labels) == before + 1


async def test_without_an_encryption_key_a_provider_is_503_and_nothing_is_written(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink
) -> None:
    app = create_app(settings(users_dsn, sink.port, encryption_key=SecretStr("")))
    client = await aiohttp_client(app)
    email = new_email()
    body = customer(email, role="PROVIDER", personal_id_number="PID-12-345678")
    resp = await client.post("/v1/auth/register", json=body)
    status, code, _, detail = await problem(resp)
    assert (status, code, detail) == (
        503,
        "SERVICE_UNAVAILABLE",
        "provider registration is not configured (ENCRYPTION_KEY)",
    )
    assert await pg.fetch(users_dsn, "SELECT 1 FROM users WHERE email = $1", email) == []
    # a CUSTOMER needs no key
    assert (await client.post("/v1/auth/register", json=customer(new_email()))).status == 201


# --- verification -----------------------------------------------------------------------


async def test_verify_marks_the_account_and_every_older_link_dies(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, first = await register(client, sink)
    resend = await client.post("/v1/auth/resend-verification", json={"email": user["email"]})
    assert resend.status == 204
    mail = await mail_to(sink, user["email"])  # woken again
    second = token_in(mail)
    assert second != first
    assert (await client.post("/v1/auth/verify", json={"token": second})).status == 204
    [row] = await pg.fetch(
        users_dsn, "SELECT verified, version FROM users WHERE id = $1", uuid.UUID(user["id"])
    )
    assert (row["verified"], row["version"]) == (True, 2)
    for token in (first, second):
        resp = await client.post("/v1/auth/verify", json={"token": token})
        assert await problem(resp) == (
            409, "LINK_USED", "Link already used", "this verification link was already used"
        )  # fmt: skip
    assert claims((await login(client, user["email"]))["access_token"])["verified"] is True


async def test_verify_an_unknown_link_is_link_invalid(client: Any, sink: SmtpSink) -> None:
    resp = await client.post("/v1/auth/verify", json={"token": "A" * 43})
    assert await problem(resp) == (
        400, "LINK_INVALID", "Link not valid", "this verification link is not valid"
    )  # fmt: skip
    for malformed in ("short", "has spaces in it here"):
        resp = await client.post("/v1/auth/verify", json={"token": malformed})
        assert (await problem(resp))[:2] == (400, "VALIDATION_ERROR")


async def test_a_reset_link_does_not_verify(client: Any, sink: SmtpSink) -> None:
    user, _ = await register(client, sink)
    assert (
        await client.post("/v1/auth/password-reset", json={"email": user["email"]})
    ).status == 204
    reset = token_in(await mail_to(sink, user["email"]))
    resp = await client.post("/v1/auth/verify", json={"token": reset})
    assert (await problem(resp))[1] == "LINK_INVALID"


async def test_verify_an_expired_link_is_link_expired_and_changes_nothing(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, token = await register(client, sink)
    await pg.execute(
        users_dsn,
        "UPDATE email_tokens SET created_at = now() - interval '3 hours', "
        "expires_at = now() - interval '1 second' WHERE user_id = $1",
        uuid.UUID(user["id"]),
    )
    resp = await client.post("/v1/auth/verify", json={"token": token})
    assert await problem(resp) == (
        400, "LINK_EXPIRED", "Link expired", "this verification link has expired"
    )  # fmt: skip
    [row] = await pg.fetch(
        users_dsn, "SELECT verified FROM users WHERE id = $1", uuid.UUID(user["id"])
    )
    assert row["verified"] is False


async def test_resend_mails_nothing_to_a_verified_or_unknown_account(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, token = await register(client, sink)
    assert (await client.post("/v1/auth/verify", json={"token": token})).status == 204
    since = await queued_from_now(users_dsn)
    unknown = new_email()
    for email in (user["email"], unknown):
        resp = await client.post("/v1/auth/resend-verification", json={"email": email})
        assert resp.status == 204
    rows = await pg.fetch(
        users_dsn,
        "SELECT count(*) AS n FROM email_tokens WHERE user_id = $1",
        uuid.UUID(user["id"]),
    )
    assert rows[0]["n"] == 1
    queued = await pg.fetch(
        users_dsn,
        "SELECT recipient FROM mail_outbox WHERE recipient = ANY($1::text[]) AND created_at >= $2",
        [user["email"], unknown],
        since,
    )
    assert queued == []


# --- password reset ---------------------------------------------------------------------


async def test_password_reset_end_to_end(client: Any, sink: SmtpSink, users_dsn: str) -> None:
    user, _ = await register(client, sink)
    sessions = [await login(client, user["email"]) for _ in range(2)]
    tokens = []
    for _ in range(2):  # two links asked; the later one is used
        resp = await client.post("/v1/auth/password-reset", json={"email": user["email"]})
        assert resp.status == 204
        mail = await mail_to(sink, user["email"])
        tokens.append(token_in(mail))
    assert (mail["Subject"], text_of(mail)) == (
        "Reset your Fixup password",
        "Someone asked to reset the password of this Fixup account.\n\n"
        "Choose a new password within 30 minutes:\n"
        f"{BASE_URL}/reset-password#token={tokens[1]}\n\n"
        "If it was not you, ignore this mail: the password stays as it is.\n",
    )
    assert (
        await lifetime(
            users_dsn,
            "SELECT created_at, expires_at FROM email_tokens WHERE token_hash = $1 "
            "AND purpose = 'PASSWORD_RESET'",
            hashlib.sha256(tokens[1].encode()).digest(),
        )
        == RESET_TTL
    )
    body = {"token": tokens[1], "new_password": "a new secret"}
    assert (await client.post("/v1/auth/password-reset/confirm", json=body)).status == 204
    await every_session_ended(client, users_dsn, user, sessions, "password reset")
    for token in tokens:  # the link used, and the older one with it
        again = {"token": token, "new_password": "another secret"}
        resp = await client.post("/v1/auth/password-reset/confirm", json=again)
        assert await problem(resp) == (
            409, "LINK_USED", "Link already used", "this reset link was already used"
        )  # fmt: skip


async def test_password_reset_refusals(client: Any, sink: SmtpSink, users_dsn: str) -> None:
    body = {"token": "C" * 43, "new_password": "long enough"}
    resp = await client.post("/v1/auth/password-reset/confirm", json=body)
    assert await problem(resp) == (
        400, "LINK_INVALID", "Link not valid", "this reset link is not valid"
    )  # fmt: skip
    for malformed in ({"token": "C" * 43, "new_password": "short"}, {"token": "C" * 43}):
        resp = await client.post("/v1/auth/password-reset/confirm", json=malformed)
        assert (await problem(resp))[:2] == (400, "VALIDATION_ERROR")
    user, verify_token = await register(client, sink)
    body = {"token": verify_token, "new_password": "long enough"}  # a verification link
    resp = await client.post("/v1/auth/password-reset/confirm", json=body)
    assert (await problem(resp))[1] == "LINK_INVALID"
    assert (
        await client.post("/v1/auth/password-reset", json={"email": user["email"]})
    ).status == 204
    token = token_in(await mail_to(sink, user["email"]))
    await pg.execute(
        users_dsn,
        "UPDATE email_tokens SET created_at = now() - interval '1 hour', "
        "expires_at = now() - interval '1 second' WHERE user_id = $1 AND purpose = $2",
        uuid.UUID(user["id"]), "PASSWORD_RESET",
    )  # fmt: skip
    resp = await client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": "long enough"}
    )
    assert await problem(resp) == (
        400, "LINK_EXPIRED", "Link expired", "this reset link has expired"
    )  # fmt: skip
    await login(client, user["email"])  # the password is unchanged


async def test_a_reset_link_of_a_deleted_account_is_invalid_and_changes_nothing(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, _ = await register(client, sink)
    user_id = uuid.UUID(user["id"])
    await login(client, user["email"])
    assert (
        await client.post("/v1/auth/password-reset", json={"email": user["email"]})
    ).status == 204
    token = token_in(await mail_to(sink, user["email"]))
    await pg.execute(users_dsn, "UPDATE users SET disabled_at = now() WHERE id = $1", user_id)
    body = {"token": token, "new_password": "long enough"}
    resp = await client.post("/v1/auth/password-reset/confirm", json=body)
    assert await problem(resp) == (
        400, "LINK_INVALID", "Link not valid", "this reset link is not valid"
    )  # fmt: skip
    used = await pg.fetch(users_dsn, "SELECT used_at FROM email_tokens WHERE user_id = $1", user_id)
    assert {r["used_at"] for r in used} == {None}
    families = await pg.fetch(
        users_dsn, "SELECT revoked_at FROM refresh_token_families WHERE user_id = $1", user_id
    )
    assert [f["revoked_at"] for f in families] == [None]


async def test_a_reset_asked_for_an_unknown_or_disabled_email_queues_nothing(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, _ = await register(client, sink)
    await pg.execute(
        users_dsn, "UPDATE users SET disabled_at = now() WHERE id = $1", uuid.UUID(user["id"])
    )
    unknown = new_email()
    since = await queued_from_now(users_dsn)
    for email in (unknown, user["email"]):
        assert (await client.post("/v1/auth/password-reset", json={"email": email})).status == 204
    queued = await pg.fetch(
        users_dsn,
        "SELECT recipient FROM mail_outbox WHERE recipient = ANY($1::text[]) AND created_at >= $2",
        [user["email"], unknown],
        since,
    )
    assert queued == []
    tokens = await pg.fetch(
        users_dsn,
        "SELECT purpose FROM email_tokens WHERE user_id = $1",
        uuid.UUID(user["id"]),
    )
    assert [t["purpose"] for t in tokens] == ["VERIFY_EMAIL"]
    # nor was one sent already: every mail up to a later one (the relay sends the oldest
    # due first) is read, whoever it is for
    marker = new_email()
    resp = await client.post("/v1/auth/register", json=customer(marker))
    assert resp.status == 201, await resp.text()
    recipients = [(await sink.next_mail(MAIL_SOON))["To"]]
    while recipients[-1] != marker:
        recipients.append((await sink.next_mail(MAIL_SOON))["To"])
    assert not {unknown, user["email"]} & set(recipients)


# --- password change --------------------------------------------------------------------


async def test_change_password_ends_every_session(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, _ = await register(client, sink)
    sessions = [await login(client, user["email"]) for _ in range(2)]
    body = {"old_password": PASSWORD, "new_password": "a new secret"}
    resp = await client.post(
        "/v1/users/me/password", json=body, headers=bearer(sessions[0]["access_token"])
    )
    assert resp.status == 204, await resp.text()
    await every_session_ended(client, users_dsn, user, sessions, "password changed")


async def test_change_password_with_a_wrong_old_password_changes_nothing(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, _ = await register(client, sink)
    session = await login(client, user["email"])
    body = {"old_password": "not my password", "new_password": "a new secret"}
    resp = await client.post(
        "/v1/users/me/password", json=body, headers=bearer(session["access_token"])
    )
    assert await problem(resp) == (
        400, "VALIDATION_ERROR", "Validation failed", "the old password is wrong"
    )  # fmt: skip
    assert (await resp.json())["errors"] == [{"field": "old_password", "message": "wrong password"}]
    assert (await refresh(client, session["refresh_token"])).status == 200
    await login(client, user["email"])


async def test_change_password_of_a_gone_account_is_401(client: Any, sink: SmtpSink) -> None:
    """A token of no account names no session of it either (re-authentication looks
    first); a disabled account's own token: the own-account writes' test below."""
    user, _ = await register(client, sink)
    body = {"old_password": PASSWORD, "new_password": "a new secret"}
    nobody = bearer(token_of_no_account(user))
    resp = await client.post("/v1/users/me/password", json=body, headers=nobody)
    assert await problem(resp) == (401, "UNAUTHORIZED", "Unauthorized", "this session has ended")


def token_of_no_account(user: dict[str, Any]) -> str:
    """An access token, well signed, of an account that never existed."""
    from lib.auth.tokens import TokenSigner

    signer = TokenSigner(KEYS[0], ACCESS_TTL)
    value, _ = signer.issue(uuid.uuid4(), user["role"], True, session_id=uuid.uuid4())
    return value


# --- sessions: login --------------------------------------------------------------------


async def test_login_answers_the_pair_the_cookies_and_one_new_family(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, _ = await register(client, sink)
    resp = await client.post(
        "/v1/auth/login", json={"email": user["email"].upper(), "password": PASSWORD}
    )
    assert resp.status == 200, await resp.text()
    pair = (await resp.json())["data"]
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert (pair["token_type"], pair["expires_in"]) == ("Bearer", ACCESS_TTL)
    assert len(pair["refresh_token"]) == 43
    assert resp.headers["Cache-Control"] == "no-store"
    found = claims(pair["access_token"])
    assert (found["sub"], found["role"], found["verified"]) == (user["id"], "CUSTOMER", False)
    cookies = {c.split("=", 1)[0]: c for c in resp.headers.getall("Set-Cookie")}
    assert cookies == {
        "fixup_access": f"fixup_access={pair['access_token']}; HttpOnly; Max-Age={ACCESS_TTL}; "
        "Path=/; SameSite=Strict; Secure",
        "fixup_refresh": f"fixup_refresh={pair['refresh_token']}; HttpOnly; "
        f"Max-Age={REFRESH_TTL}; Path=/api/users/v1/auth; SameSite=Strict; Secure",
    }
    assert (
        await lifetime(
            users_dsn,
            "SELECT t.created_at, t.expires_at FROM refresh_tokens t JOIN refresh_token_families f "
            "ON f.id = t.family_id WHERE f.user_id = $1 AND t.token_hash = $2",
            uuid.UUID(user["id"]),
            hashlib.sha256(pair["refresh_token"].encode()).digest(),
        )
        == REFRESH_TTL
    )
    assert (await refresh(client, pair["refresh_token"])).status == 200


async def test_cookies_are_not_secure_when_told(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink
) -> None:
    client = await aiohttp_client(create_app(settings(users_dsn, sink.port, cookie_secure=False)))
    user, _ = await register(client, sink)
    resp = await client.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    cookies = resp.headers.getall("Set-Cookie")
    assert len(cookies) == 2
    assert not any("Secure" in cookie for cookie in cookies)


@pytest.mark.parametrize("who", ["unknown", "wrong-password", "disabled"])
async def test_login_refusals_are_one_401(
    client: Any, sink: SmtpSink, users_dsn: str, who: str
) -> None:
    user, _ = await register(client, sink)
    email, password = user["email"], PASSWORD
    if who == "unknown":
        email = new_email()
    elif who == "wrong-password":
        password = "not the password"
    else:
        await pg.execute(
            users_dsn, "UPDATE users SET disabled_at = now() WHERE id = $1", uuid.UUID(user["id"])
        )
    resp = await client.post("/v1/auth/login", json={"email": email, "password": password})
    assert await problem(resp) == (401, "UNAUTHORIZED", "Unauthorized", "wrong email or password")
    assert "Set-Cookie" not in resp.headers
    families = await pg.fetch(
        users_dsn,
        "SELECT 1 FROM refresh_token_families WHERE user_id = $1",
        uuid.UUID(user["id"]),
    )
    assert families == []


async def test_a_login_racing_a_password_change_is_the_same_401(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, _ = await register(client, sink)
    user_id = uuid.UUID(user["id"])
    conn = await asyncpg.connect(users_dsn)
    watcher = await asyncpg.connect(users_dsn)
    try:
        change = conn.transaction()
        await change.start()
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)
        body = {"email": user["email"], "password": PASSWORD}
        attempt = asyncio.ensure_future(client.post("/v1/auth/login", json=body))
        await blocked_on_a_lock(watcher, seconds=20.0)
        await conn.execute("UPDATE users SET password_hash = 'changed' WHERE id = $1", user_id)
        await change.commit()
        resp = await attempt
        assert await problem(resp) == (
            401, "UNAUTHORIZED", "Unauthorized", "wrong email or password"
        )  # fmt: skip
        assert "Set-Cookie" not in resp.headers
        families = await conn.fetchval(
            "SELECT count(*) FROM refresh_token_families WHERE user_id = $1", user_id
        )
        assert families == 0
    finally:
        await watcher.close()
        await conn.close()


async def test_without_a_signing_key_login_is_503(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink
) -> None:
    client = await aiohttp_client(
        create_app(settings(users_dsn, sink.port, jwt_private_key=SecretStr("")))
    )
    user, _ = await register(client, sink)
    resp = await client.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    status, code, _, detail = await problem(resp)
    assert (status, code, detail) == (
        503,
        "SERVICE_UNAVAILABLE",
        "sign-in is not configured (JWT_PRIVATE_KEY)",
    )


# --- sessions: refresh ------------------------------------------------------------------


async def test_refresh_rotates_within_the_family(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, token = await register(client, sink)
    user_id = uuid.UUID(user["id"])
    first = await login(client, user["email"])
    assert (await client.post("/v1/auth/verify", json={"token": token})).status == 204
    resp = await refresh(client, first["refresh_token"])
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    second = (await resp.json())["data"]
    assert (second["token_type"], second["expires_in"]) == ("Bearer", ACCESS_TTL)
    assert second["refresh_token"] != first["refresh_token"]
    cookies = {c.split("=", 1)[0]: c for c in resp.headers.getall("Set-Cookie")}
    assert cookies["fixup_refresh"].startswith(f"fixup_refresh={second['refresh_token']};")
    assert cookies["fixup_access"].startswith(f"fixup_access={second['access_token']};")
    found = claims(second["access_token"])  # the account as it is now: verified
    assert (found["sub"], found["role"], found["verified"]) == (user["id"], "CUSTOMER", True)
    rows = await pg.fetch(
        users_dsn,
        "SELECT t.family_id, t.token_hash, t.used_at, t.created_at, t.expires_at "
        "FROM refresh_tokens t JOIN refresh_token_families f ON f.id = t.family_id "
        "WHERE f.user_id = $1 ORDER BY t.created_at",
        user_id,
    )
    digests = [hashlib.sha256(p["refresh_token"].encode()).digest() for p in (first, second)]
    assert [bytes(r["token_hash"]) for r in rows] == digests
    assert rows[0]["family_id"] == rows[1]["family_id"]
    assert (rows[0]["used_at"] is not None, rows[1]["used_at"]) == (True, None)
    assert (rows[1]["expires_at"] - rows[1]["created_at"]).total_seconds() == REFRESH_TTL
    assert (await refresh(client, second["refresh_token"])).status == 200


async def test_a_replayed_refresh_token_revokes_its_family_only(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, _ = await register(client, sink)
    user_id = uuid.UUID(user["id"])
    first = await login(client, user["email"])
    other = await login(client, user["email"])  # another device: another family
    second = (await (await refresh(client, first["refresh_token"])).json())["data"]
    replay = await refresh(client, first["refresh_token"])
    assert await problem(replay) == (401, "UNAUTHORIZED", "Unauthorized", "invalid refresh token")
    families = await pg.fetch(
        users_dsn,
        "SELECT f.revoked_reason FROM refresh_token_families f "
        "WHERE f.user_id = $1 ORDER BY f.created_at, f.id",
        user_id,
    )
    assert sorted(f["revoked_reason"] or "" for f in families) == ["", "refresh token reused"]
    assert (await refresh(client, second["refresh_token"])).status == 401
    assert (await refresh(client, other["refresh_token"])).status == 200


@pytest.mark.parametrize("why", ["unknown", "expired", "disabled", "revoked"])
async def test_refresh_refusals_are_one_401_and_rotate_nothing(
    client: Any, sink: SmtpSink, users_dsn: str, why: str
) -> None:
    user, _ = await register(client, sink)
    user_id = uuid.UUID(user["id"])
    token = (await login(client, user["email"]))["refresh_token"]
    if why == "unknown":
        token = "B" * 43
    elif why == "expired":
        await pg.execute(
            users_dsn,
            "UPDATE refresh_tokens t SET created_at = now() - interval '8 days', "
            "expires_at = now() - interval '1 second' FROM refresh_token_families f "
            "WHERE f.id = t.family_id AND f.user_id = $1",
            user_id,
        )
    elif why == "disabled":
        await pg.execute(users_dsn, "UPDATE users SET disabled_at = now() WHERE id = $1", user_id)
    else:
        await pg.execute(
            users_dsn,
            "UPDATE refresh_token_families SET revoked_at = now(), revoked_reason = 'test' "
            "WHERE user_id = $1",
            user_id,
        )
    resp = await refresh(client, token)
    assert await problem(resp) == (401, "UNAUTHORIZED", "Unauthorized", "invalid refresh token")
    assert "Set-Cookie" not in resp.headers
    rows = await pg.fetch(
        users_dsn,
        "SELECT t.used_at, f.revoked_reason FROM refresh_tokens t "
        "JOIN refresh_token_families f ON f.id = t.family_id WHERE f.user_id = $1",
        user_id,
    )
    assert [r["used_at"] for r in rows] == [None]  # neither used nor rotated
    assert [r["revoked_reason"] for r in rows] == ["test" if why == "revoked" else None]


async def test_refresh_by_cookie(client: Any, sink: SmtpSink) -> None:
    user, _ = await register(client, sink)
    tokens = [(await login(client, user["email"]))["refresh_token"] for _ in range(2)]
    cookie = {"Cookie": f"fixup_refresh={tokens[0]}"}
    for origin in ({}, {"Origin": "https://evil.example"}):
        resp = await client.post("/v1/auth/refresh", headers={**cookie, **origin})
        assert await problem(resp) == (
            403, "FORBIDDEN", "Forbidden", "a cookie-authenticated write needs an allowed Origin"
        )  # fmt: skip
    ok = await client.post("/v1/auth/refresh", headers={**cookie, "Origin": ORIGIN})
    assert ok.status == 200, await ok.text()
    # a body without a token falls back to the cookie; a body's token wins over it
    cookie = {"Cookie": f"fixup_refresh={(await ok.json())['data']['refresh_token']}"}
    ok = await client.post("/v1/auth/refresh", json={}, headers={**cookie, "Origin": ORIGIN})
    assert ok.status == 200, await ok.text()
    cookie = {"Cookie": f"fixup_refresh={(await ok.json())['data']['refresh_token']}"}
    body = {"refresh_token": tokens[1]}
    won = await client.post("/v1/auth/refresh", json=body, headers=cookie)  # no Origin needed
    assert won.status == 200, await won.text()
    assert (await refresh(client, tokens[1])).status == 401  # the body's token was used
    assert (await client.post("/v1/auth/refresh", headers={**cookie, "Origin": ORIGIN})).ok


async def test_refresh_with_no_token_at_all_is_401(client: Any) -> None:
    detail = "no refresh token (body refresh_token or the fixup_refresh cookie)"
    choices: list[dict[str, Any]] = [{}, {"json": {}}, {"headers": {"Cookie": "fixup_refresh="}}]
    for kwargs in choices:
        resp = await client.post("/v1/auth/refresh", **kwargs)
        assert await problem(resp) == (401, "UNAUTHORIZED", "Unauthorized", detail)


# --- sessions: logout -------------------------------------------------------------------


async def test_logout_revokes_the_family_and_clears_the_cookies(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, _ = await register(client, sink)
    pair = await login(client, user["email"])
    other = await login(client, user["email"])
    resp = await client.post("/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert resp.status == 204
    cleared = sorted(resp.headers.getall("Set-Cookie"))
    assert [c.split(";")[0] for c in cleared] == ['fixup_access=""', 'fixup_refresh=""']
    assert ("Max-Age=0" in cleared[0], "Path=/;" in cleared[0] + ";") == (True, True)
    assert ("Max-Age=0" in cleared[1], "Path=/api/users/v1/auth" in cleared[1]) == (True, True)
    families = await pg.fetch(
        users_dsn,
        "SELECT revoked_reason FROM refresh_token_families WHERE user_id = $1",
        uuid.UUID(user["id"]),
    )
    assert sorted(f["revoked_reason"] or "" for f in families) == ["", "logout"]
    assert (await refresh(client, pair["refresh_token"])).status == 401
    assert (await refresh(client, other["refresh_token"])).status == 200
    unknown = await client.post("/v1/auth/logout", json={"refresh_token": "D" * 43})
    assert unknown.status == 204
    by_cookie = await client.post(
        "/v1/auth/logout", headers={"Cookie": "fixup_refresh=" + "E" * 43, "Origin": ORIGIN}
    )
    assert by_cookie.status == 204
    assert (await client.post("/v1/auth/logout", json={})).status == 401


# --- the kit ------------------------------------------------------------------------------


async def test_the_kit_takes_its_settings(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink
) -> None:
    limits = {
        "login_rate": 1.5, "login_burst": 7, "register_rate": 2.5, "register_burst": 8,
        "mail_rate": 3.5, "mail_burst": 9,
    }  # fmt: skip
    argon2 = {"argon2_time_cost": 2, "argon2_memory_cost": 16, "argon2_parallelism": 2}
    app = create_app(
        settings(
            users_dsn,
            sink.port,
            argon2_workers=3,
            argon2_queue=5,
            argon2_priority="nice",
            **argon2,
            **limits,
        )
    )
    client = await aiohttp_client(app)
    kit = app[AUTH_KIT]
    assert (kit.login_limit.rate, kit.login_limit.burst) == (1.5, 7)  # type: ignore[attr-defined]
    assert (kit.register_limit.rate, kit.register_limit.burst) == (2.5, 8)  # type: ignore[attr-defined]
    assert (kit.mail_limit.rate, kit.mail_limit.burst) == (3.5, 9)  # type: ignore[attr-defined]
    user, _ = await register(client, sink)
    [row] = await pg.fetch(
        users_dsn, "SELECT password_hash FROM users WHERE id = $1", uuid.UUID(user["id"])
    )
    assert row["password_hash"].startswith("$argon2id$v=19$m=16,t=2,p=2$")
    bulkhead = kit.hasher.bulkhead
    assert (bulkhead.workers, bulkhead.capacity) == (3, 8)
    # "nice": the hashing threads keep the normal policy, 10 steps below this loop
    policy = await bulkhead.run(os.sched_getscheduler, 0)
    niceness = await bulkhead.run(os.getpriority, os.PRIO_PROCESS, 0)
    assert (policy, niceness) == (os.SCHED_OTHER, below_this_loop())


def below_this_loop() -> int:
    """The niceness of a hashing thread this thread starts (it inherits this one's)."""
    loop = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    return min(MAX_NICENESS, loop + HASHING_NICENESS)


async def test_hashing_threads_run_10_steps_below_the_loop_by_default(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink
) -> None:
    app = create_app(settings(users_dsn, sink.port))
    await aiohttp_client(app)
    hasher = app[AUTH_KIT].hasher
    niceness = await hasher.bulkhead.run(
        lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    )
    assert niceness == below_this_loop()


@pytest.mark.parametrize(
    ("unset", "missing"),
    [((), None), (("jwt_private_key",), ["JWT_PRIVATE_KEY"]),
     (("encryption_key",), ["ENCRYPTION_KEY"]),
     (("jwt_private_key", "encryption_key"), ["JWT_PRIVATE_KEY", "ENCRYPTION_KEY"])],
    ids=["configured", "no-signing-key", "no-encryption-key", "neither"],
)  # fmt: skip
async def test_a_missing_key_is_warned_of_by_name(
    aiohttp_client: Any,
    users_dsn: str,
    sink: SmtpSink,
    unset: tuple[str, ...],
    missing: list[str] | None,
) -> None:
    app = create_app(settings(users_dsn, sink.port, **{k: SecretStr("") for k in unset}))
    with structlog.testing.capture_logs() as logs:
        await aiohttp_client(app)
    warned = [e for e in logs if e["event"] == "auth_not_configured"]
    if missing is None:
        assert warned == []
    else:
        assert [(e["log_level"], e["missing"]) for e in warned] == [("warning", missing)]


async def test_the_auth_limits_are_kept_in_redis_by_name_and_key(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink, servers: Servers, redis_prefix: str
) -> None:
    prefix = f"{redis_prefix}rl:{uuid.uuid4().hex}:"
    slow = {
        f"{name}_{part}": value
        for name in ("login", "register", "mail")
        for part, value in (("rate", 0.01), ("burst", 100))
    }  # keys live 10^4 s
    options = {
        "redis_url": servers.redis_url,
        "rate_limit_prefix": prefix,
        # the keys are what is checked: Redis's answer, however late on a loaded machine,
        # not the default 0.25 s's per-process fallback (test_ratelimit_outage checks that)
        "rate_limit_redis_timeout": min(10.0, scaled(2.0)),
        **slow,
    }
    app = create_app(settings(users_dsn, sink.port, **options))
    client = await aiohttp_client(app)
    kit = app[AUTH_KIT]
    for name in ("login", "register", "mail"):
        limiter = getattr(kit, f"{name}_limit")
        assert limiter.shared.prefix == f"{prefix}users:{name}:"
    user, _ = await register(client, sink)
    email = user["email"]
    await login(client, email)
    assert (await client.post("/v1/auth/password-reset", json={"email": email})).status == 204
    other = new_email()  # resend-verification's own key, of an address nothing else used
    resp = await client.post("/v1/auth/resend-verification", json={"email": other})
    assert resp.status == 204
    redis = aioredis.Redis.from_url(servers.redis_url)
    try:
        keys = {key.decode() async for key in redis.scan_iter(match=f"{prefix}*")}
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
    assert keys >= {
        f"{prefix}users:register:ip:127.0.0.1",
        f"{prefix}users:login:ip:127.0.0.1",
        f"{prefix}users:login:email:{email}",
        f"{prefix}users:mail:email:{email}",
        f"{prefix}users:mail:email:{other}",
    }


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/users/me/passkeys/options", None),
        ("/v1/users/me/second-factor/totp", None),
        ("/v1/auth/reauth", {"password": PASSWORD}),
        ("/v1/users/me/password", {"old_password": PASSWORD, "new_password": "a new long one"}),
    ],
)
async def test_a_token_that_outlived_its_account_is_401_on_every_own_account_write(
    client: Any, sink: SmtpSink, users_dsn: str, path: str, body: dict[str, str] | None
) -> None:
    """A disabled account's access token, still unexpired and signed in just now: every
    handler that loads the caller's own row answers the same 401 and changes nothing."""
    user, _ = await register(client, sink)
    user_id = uuid.UUID(user["id"])
    pair = await login(client, user["email"])
    await pg.execute(users_dsn, "UPDATE users SET disabled_at = now() WHERE id = $1", user_id)
    resp = await client.post(path, json=body, headers=bearer(pair["access_token"]))
    assert await problem(resp) == (
        401, "UNAUTHORIZED", "Unauthorized", "the account of this token no longer exists"
    )  # fmt: skip
    challenges = await pg.fetch(
        users_dsn, "SELECT 1 FROM webauthn_challenges WHERE user_id = $1", user_id
    )
    factors = await pg.fetch(users_dsn, "SELECT 1 FROM totp_factors WHERE user_id = $1", user_id)
    assert (challenges, factors) == ([], [])
