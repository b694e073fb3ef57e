"""Mail through the outbox relay to a real (local) SMTP server: verification and reset
mails arrive, each token works once, and a mail written while SMTP is down is delivered
once it is back, with the failed attempt recorded in between."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from services.users.app import create_app
from tests import pg
from tests.integration.smtp_support import MAIL_WAIT, SmtpSink, smtp_sink, token_in
from tests.integration.test_users_auth import customer, new_email, settings
from tools.local.ports import free_port


async def test_verification_and_reset_mails_each_token_once(
    aiohttp_client: Any, users_dsn: str
) -> None:
    with smtp_sink() as sink:
        client = await aiohttp_client(create_app(settings(users_dsn, sink.port)))
        email = new_email()
        assert (await client.post("/v1/auth/register", json=customer(email))).status == 201
        mail = await sink.next_mail()
        assert (mail["To"], mail["Subject"]) == (email, "Confirm your Fixup email address")
        assert "http://localhost:8080/verify-email#token=" in str(mail.get_payload())
        token = token_in(mail)
        assert (await client.post("/v1/auth/verify", json={"token": token})).status == 204
        assert (await client.post("/v1/auth/verify", json={"token": token})).status == 409

        assert (await client.post("/v1/auth/password-reset", json={"email": email})).status == 204
        reset = await sink.next_mail()
        assert reset["Subject"] == "Reset your Fixup password"
        body = {"token": token_in(reset), "new_password": "brand new pass"}
        first = await client.post("/v1/auth/password-reset/confirm", json=body)
        again = await client.post("/v1/auth/password-reset/confirm", json=body)
        assert (first.status, again.status) == (204, 409)


async def outbox_row(dsn: str, email: str) -> asyncpg.Record | None:
    return await pg.fetchrow(
        dsn, "SELECT attempts, last_error FROM mail_outbox WHERE recipient = $1", email
    )


async def test_smtp_down_then_back_delivers_the_mail(aiohttp_client: Any, users_dsn: str) -> None:
    port = free_port()  # nothing listens here yet
    client = await aiohttp_client(create_app(settings(users_dsn, port)))
    email = new_email()
    resp = await client.post("/v1/auth/register", json=customer(email))
    assert resp.status == 201  # the request does not wait for SMTP

    async def failed_attempt() -> asyncpg.Record:
        while True:  # the relay records each failed attempt on the row
            row = await outbox_row(users_dsn, email)
            if row is not None and row["attempts"] >= 1 and row["last_error"]:
                return row
            await asyncio.sleep(0.05)

    row = await asyncio.wait_for(failed_attempt(), MAIL_WAIT)
    assert "SMTP 127.0.0.1" in row["last_error"]
    with smtp_sink(port) as sink:
        mail = await mail_for(sink, email)
        assert mail["Subject"] == "Confirm your Fixup email address"

    async def row_gone() -> None:  # the relay deletes the row once the send returned
        while True:
            if await outbox_row(users_dsn, email) is None:
                return
            await asyncio.sleep(0.05)

    # delivered: the row (and the link it carried) is gone
    await asyncio.wait_for(row_gone(), MAIL_WAIT)
    assert await outbox_row(users_dsn, email) is None


async def mail_for(sink: SmtpSink, email: str) -> Any:
    while True:
        mail = await sink.next_mail()
        if mail["To"] == email:
            return mail
