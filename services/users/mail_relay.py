"""The mail outbox relay of the users process (ADR 0010).

Handlers write a `mail_outbox` row in the transaction of the change that causes the mail,
so a mail exists exactly when its change committed. This task delivers them: claim due
rows (FOR UPDATE SKIP LOCKED, each leased by moving next_attempt_at), commit and give the
connection back, send each one with no connection held, then delete it (sent) or set its
next attempt (failed; exponential backoff up to `retry_max`). A relay that dies mid-send
loses its lease and the row is sent again: delivery is at least once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from lib.db.pool import Database
from lib.db.scope import enter_scope, exit_scope
from lib.http.keys import DB
from lib.logging import get_logger
from lib.mail import LogMailer, Mail, Mailer, MailError, SmtpMailer
from lib.metrics import OUTBOX_PENDING
from lib.relay import Relay, Round, running
from services.users.db import mail as q
from services.users.facts import MAILS
from services.users.settings import UsersSettings

log = get_logger("services.users.mail")
BATCH = 10


class MailRelay(Relay):
    name = "mail_relay"
    first_retry = 1.0

    def __init__(
        self,
        db: Database,
        mailer: Mailer,
        *,
        interval: float,
        retry_max: float,
        send_timeout: float,
        service: str,
    ) -> None:
        super().__init__(interval=interval, retry_max=retry_max, batch=BATCH)
        self.db, self.mailer, self.service = db, mailer, service
        # a claimed row stays ours while a whole batch may be sent, with margin
        self.lease = send_timeout * (BATCH + 1)
        self._pending = OUTBOX_PENDING.labels(service)

    async def run_once(self) -> Round:
        """One claim -> send -> mark round, in a connection scope of its own."""
        scope = enter_scope()
        try:
            async with self.db.transaction() as conn:
                rows = await q.claim_mail(conn, lease_seconds=self.lease, batch=BATCH)
                self._pending.set(await q.pending_mail(conn) or 0)
            sent = 0
            for row in rows:  # no connection held while talking to the mail server
                try:
                    await self.mailer.send(Mail(row.recipient, row.subject, row.body))
                except MailError as exc:
                    retry_in = self.backoff(row.attempts)
                    log.warning(
                        "mail_failed", attempts=row.attempts, retry_in=retry_in, error=str(exc)
                    )
                    async with self.db.acquire() as conn:
                        await q.mail_failed(
                            conn, error=str(exc)[:500], retry_in_seconds=retry_in, id=row.id
                        )
                    MAILS.count(self.service, outcome="failed")
                    continue
                async with self.db.acquire() as conn:
                    await q.mail_sent(conn, id=row.id)
                MAILS.count(self.service, outcome="sent")
                sent += 1
            return Round(len(rows), sent)
        finally:
            exit_scope(scope)


RELAY: web.AppKey[MailRelay] = web.AppKey("mail_relay", MailRelay)


def mail_ctx(settings: UsersSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """Starts the relay with the app, stops it (mid-send rows are leased, not lost)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        mailer: Mailer = LogMailer()
        if settings.smtp_host:
            mailer = SmtpMailer(
                settings.smtp_host,
                settings.smtp_port,
                settings.smtp_from,
                username=settings.smtp_user,
                password=settings.smtp_password.get_secret_value(),
                timeout=settings.smtp_timeout,
            )
        relay = MailRelay(
            app[DB],
            mailer,
            interval=settings.mail_relay_interval,
            retry_max=settings.mail_retry_max,
            send_timeout=settings.smtp_timeout,
            service=settings.service,
        )
        app[RELAY] = relay
        async with running(relay, name="mail-relay", stop_within=settings.shutdown_timeout):
            yield

    return ctx
