"""A local SMTP sink (aiosmtpd in its own thread) the tests read mails from."""

from __future__ import annotations

import asyncio
import contextlib
import email
import re
import time
from collections.abc import Iterator
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from services.users.mail_relay import MailRelay
from services.users.settings import UsersSettings
from tests import pg
from tools.local.ports import free_port
from tools.local.service_process import PROCESS_MARGIN

SMTP_TIMEOUT = 2.0  # the SMTP_TIMEOUT the tests give users (the e2e and reliability stacks)
# the longest one mail may take: the relay's poll at its default period (it is woken on
# commit, so usually at once), one send timing out, its first backoff, the next send; and
# PROCESS_MARGIN for a loaded machine. A test that sets shorter ones may wait less.
MAIL_WAIT = (
    UsersSettings.model_fields["mail_relay_interval"].default
    + 2 * SMTP_TIMEOUT
    + MailRelay.first_retry * 2
    + PROCESS_MARGIN
)


OUTBOX_POLL = 0.05  # s between two counts of the outbox


class SmtpSink:
    """Receives on 127.0.0.1:`port`; `next_mail()` waits for the next one."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.loop = asyncio.get_running_loop()
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.controller: Controller | None = None
        self.accepted: list[str] = []  # every recipient handed over, in order (a failure's why)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content)
        self.accepted.append(str(message["To"]))
        self.loop.call_soon_threadsafe(self.inbox.put_nowait, message)
        return "250 OK"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    async def next_mail(self, wait: float = MAIL_WAIT) -> Message:
        return await asyncio.wait_for(self.inbox.get(), wait)


@contextlib.contextmanager
def smtp_sink(port: int | None = None) -> Iterator[SmtpSink]:
    sink = SmtpSink(port)
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


async def outbox_left(users_dsn: str, within: float = MAIL_WAIT) -> int:
    """The rows left in users' mail outbox once it is empty, or after `within` seconds: a
    row leaves a moment after its mail arrived (the relay deletes it after the server's
    250), so a count taken as the last mail arrives can still see it."""
    deadline = time.monotonic() + within
    while True:
        left = int(await pg.fetchval(users_dsn, "SELECT count(*) FROM mail_outbox"))
        if left == 0 or time.monotonic() > deadline:
            return left
        await asyncio.sleep(OUTBOX_POLL)  # the next look at the outbox


async def mail_to(sink: SmtpSink, address: str) -> Message:
    """The next mail for `address` (mails of other tests in between are skipped; MAIL_WAIT
    bounds each wait)."""
    while True:
        mail = await sink.next_mail()
        if mail["To"] == address:
            return mail


def token_in(message: Message) -> str:
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    found = re.search(r"[#?]token=([A-Za-z0-9_-]+)", body.decode())
    assert found, body
    return found.group(1)
