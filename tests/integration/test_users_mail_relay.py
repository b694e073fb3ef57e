"""services/users/mail_relay.py, one round at a time on real PostgreSQL (the mutation
tests of the relay run these; docs/mutation.md): what a round claims and leases, what it
sends, what a failed send records (the error, the backoff, the log line), the pending
gauge, and the relay the app builds from its settings. A recording mailer stands in for
SMTP (tests/integration/test_mail.py delivers through a real one)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import structlog.testing
from prometheus_client import REGISTRY
from pydantic import SecretStr

from lib.db.connecting import connect
from lib.db.pool import Database
from lib.db.scope import current_scope
from lib.mail import LogMailer, Mail, MailError
from lib.mail.transport import SmtpMailer
from lib.metrics import OUTBOX_PENDING
from lib.relay import Round
from services.users.app import create_app
from services.users.mail_relay import BATCH, RELAY, MailRelay
from tests import pg
from tests.integration.test_users_auth_guards import settings

SERVICE = "users-relay-test"  # the gauge's label: no other test sets it


@pytest.fixture(scope="module")
def relay_dsn(migrated_db: Callable[[str], str]) -> str:
    return migrated_db("users")


@pytest.fixture
async def db(relay_dsn: str) -> AsyncIterator[Database]:
    database = await connect(relay_dsn, min_size=1, max_size=2)
    async with database.acquire() as conn:
        await conn.execute("DELETE FROM mail_outbox")  # each test starts with none
    yield database
    await database.close()


class Recorder:
    """A mailer: records what it is given, refuses some recipients, and reads the row of
    each mail while sending it (its lease)."""

    def __init__(self, dsn: str, refuse: set[str]) -> None:
        self.dsn, self.refuse = dsn, refuse
        self.sent: list[Mail] = []
        self.leases: list[float] = []

    async def send(self, mail: Mail) -> None:
        self.leases.append(
            await pg.fetchval(
                self.dsn,
                "SELECT extract(epoch FROM next_attempt_at - now())::float8 "
                "FROM mail_outbox WHERE recipient = $1",
                mail.recipient,
            )
        )
        if mail.recipient in self.refuse:
            raise MailError(f"SMTP refused {mail.recipient}: " + "x" * 600)
        self.sent.append(mail)


async def enqueue(db: Database, count: int) -> list[str]:
    """`count` due mails, the oldest first; their recipients in that order."""
    recipients = [f"r{i:02d}-{uuid.uuid4().hex[:6]}@fixup.test" for i in range(count)]
    async with db.acquire() as conn:
        for i, recipient in enumerate(recipients):
            await conn.execute(
                "INSERT INTO mail_outbox (recipient, subject, body, next_attempt_at) "
                "VALUES ($1, $2, $3, now() - make_interval(secs => $4))",
                recipient,
                f"subject {i}",
                f"body {i}\n",
                float(100 - i),
            )
    return recipients


async def rows(db: Database) -> dict[str, Any]:
    async with db.acquire() as conn:
        found = await conn.fetch(
            "SELECT recipient, attempts, last_error, "
            "extract(epoch FROM next_attempt_at - now())::float8 AS due_in FROM mail_outbox"
        )
    return {row["recipient"]: row for row in found}


def pending() -> float:
    return float(OUTBOX_PENDING.labels(SERVICE)._value.get())


def mails() -> tuple[float, float]:
    """users_mails_total{outcome} sent and failed (issue 43)."""
    sent, failed = (
        REGISTRY.get_sample_value("users_mails_total", {"service": SERVICE, "outcome": o}) or 0.0
        for o in ("sent", "failed")
    )
    return sent, failed


async def test_a_round_sends_a_batch_and_records_a_failure(db: Database, relay_dsn: str) -> None:
    sent, failed_before = mails()
    recipients = await enqueue(db, BATCH + 2)
    refused = recipients[3]
    mailer = Recorder(relay_dsn, {refused})
    relay = MailRelay(db, mailer, interval=60, retry_max=300, send_timeout=2.0, service=SERVICE)
    began = time.monotonic()  # the round's leases and retry times are set after this
    with structlog.testing.capture_logs() as logs:
        done = await relay.run_once()
    assert done == Round(BATCH, BATCH - 1)
    assert mails() == (sent + BATCH - 1, failed_before + 1)
    assert current_scope() is None  # the round's connection scope is closed
    assert pending() == BATCH + 2  # counted when claimed
    first = [r for r in recipients[:BATCH] if r != refused]
    assert mailer.sent == [Mail(r, f"subject {recipients.index(r)}",
                                f"body {recipients.index(r)}\n") for r in first]  # fmt: skip
    # each row was leased for the whole batch's sends and a margin: 2 s x 11, read while
    # sending (less what the round had taken by then: a loaded machine's seconds)
    sending = time.monotonic() - began
    assert all(22.0 - sending <= lease <= 22.0 for lease in mailer.leases), mailer.leases
    left = await rows(db)
    elapsed = time.monotonic() - began
    assert set(left) == {refused, *recipients[BATCH:]}  # the sent ones are deleted
    failed = left[refused]
    assert failed["attempts"] == 1
    assert failed["last_error"] == (f"SMTP refused {refused}: " + "x" * 600)[:500]
    # first retry 1 s, doubled once per attempt made: due 2 s after the failure, which was
    # recorded at most `elapsed` seconds before this read
    assert -elapsed <= failed["due_in"] < 2.0  # full jitter (lib/backoff.py): [0, 2 s)
    assert [(e["event"], e["log_level"], e["attempts"]) for e in logs] == [
        ("mail_failed", "warning", 1)
    ]
    assert 0 <= logs[0]["retry_in"] < 2.0
    assert logs[0]["error"] == f"SMTP refused {refused}: " + "x" * 600
    for recipient in recipients[BATCH:]:
        assert left[recipient]["attempts"] == 0  # beyond the batch: not claimed

    # the next round: the rest, then nothing. The failed one's jittered retry may fall due
    # at once (full jitter starts at 0, and a loaded machine takes its time): held back
    # here, so the round is the rest alone
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE mail_outbox SET next_attempt_at = now() + interval '1 hour' "
            "WHERE recipient = $1",
            refused,
        )
    assert await relay.run_once() == Round(2, 2)
    assert [m.recipient for m in mailer.sent[-2:]] == recipients[BATCH:]
    assert mails() == (sent + BATCH + 1, failed_before + 1)
    assert pending() == 3
    assert await relay.run_once() == Round(0, 0)
    assert pending() == 1


async def test_an_empty_outbox_sets_the_gauge_to_zero(db: Database, relay_dsn: str) -> None:
    relay = MailRelay(
        db, Recorder(relay_dsn, set()), interval=60, retry_max=300, send_timeout=1.0,
        service=SERVICE,
    )  # fmt: skip
    OUTBOX_PENDING.labels(SERVICE).set(7)
    assert await relay.run_once() == Round(0, 0)
    assert pending() == 0


async def test_the_backoff_grows_to_its_cap(db: Database, relay_dsn: str) -> None:
    [recipient] = await enqueue(db, 1)
    async with db.acquire() as conn:
        await conn.execute("UPDATE mail_outbox SET attempts = 4")
    relay = MailRelay(
        db, Recorder(relay_dsn, {recipient}), interval=60, retry_max=10.0, send_timeout=1.0,
        service=SERVICE,
    )  # fmt: skip
    began = time.monotonic()
    assert await relay.run_once() == Round(1, 0)
    due_in = (await rows(db))[recipient]["due_in"]
    assert -(time.monotonic() - began) <= due_in < 10.0  # jitter below 1 s x 2^5, capped at 10


async def test_the_app_builds_its_relay_from_the_settings(
    aiohttp_client: Any, relay_dsn: str
) -> None:
    options = {
        "smtp_user": "relay-user", "smtp_password": SecretStr("relay-pass"),
        "smtp_from": "Fixup Tests <tests@fixup.test>", "smtp_timeout": 3.5,
        "mail_relay_interval": 42.0, "mail_retry_max": 77.0, "service": "users-eu",
    }  # fmt: skip
    app = create_app(settings(relay_dsn, 2525, **options))
    await aiohttp_client(app)
    relay = app[RELAY]
    assert (relay.interval, relay.retry_max, relay.batch, relay.lease) == (42.0, 77.0, 10, 38.5)
    assert relay._pending is OUTBOX_PENDING.labels("users-eu")  # the process's own label
    # it runs as a task of its own name (what a task dump or asyncio debug shows)
    assert "mail-relay" in {task.get_name() for task in asyncio.all_tasks()}
    mailer = relay.mailer
    assert isinstance(mailer, SmtpMailer)
    assert (mailer.host, mailer.port, mailer.sender, mailer.timeout) == (
        "127.0.0.1", 2525, "Fixup Tests <tests@fixup.test>", 3.5
    )  # fmt: skip
    assert (mailer.username, mailer.password) == ("relay-user", "relay-pass")


async def test_without_an_smtp_host_the_relay_logs_each_mail(
    aiohttp_client: Any, relay_dsn: str
) -> None:
    """SMTP_HOST empty (development): the relay hands each mail to the log."""
    app = create_app(settings(relay_dsn, 2525, smtp_host=""))
    await aiohttp_client(app)
    assert isinstance(app[RELAY].mailer, LogMailer)
