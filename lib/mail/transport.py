"""The two transports: a log line (development, tests without SMTP) or an SMTP server."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from lib.logging import get_logger

log = get_logger("lib.mail")


@dataclass(frozen=True, slots=True)
class Mail:
    recipient: str
    subject: str
    body: str  # plain text


class MailError(RuntimeError):
    """The mail was not handed over (server down, refused, timed out): retry later."""


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None: ...


class LogMailer:
    """Writes each mail to the log (the links in it included): for development only."""

    async def send(self, mail: Mail) -> None:
        log.info("mail_logged", to=mail.recipient, subject=mail.subject, body=mail.body)


class SmtpMailer:
    """One SMTP session per mail (aiosmtplib.send), bounded by `timeout` seconds."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str = "",
        password: str = "",
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password = username or None, password or None
        self.timeout = timeout

    async def send(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.recipient
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise MailError(f"SMTP {self.host}:{self.port}: {exc}") from exc
