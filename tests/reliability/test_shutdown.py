"""SIGTERM under load: in-flight requests complete, the port closes, the process exits 0
within SHUTDOWN_TIMEOUT, and its log has no error line. HTTP (departments) and gRPC
(points)."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from email.message import Message
from pathlib import Path

import aiohttp
import grpc

from lib.auth.principal import Role
from lib.grpc.client import ChannelPool
from lib.pb.point import PointReply, PointRequest
from services.users.mail_relay import BATCH
from tests import pg
from tests.integration.smtp_support import SmtpSink, smtp_sink
from tests.reliability import figures
from tests.reliability.awards import (
    awards_once,
    error_lines,
    relay_env,
    secrets_in,
    settle,
    start_points,
    undelivered,
)
from tests.reliability.stack import PASSWORD, bearer, common_env, points_env, start, users_env
from tests.reliability.world import Orders, actor, catalog_service
from tools.local.service_process import PROCESS_MARGIN, ServiceProcess

SHUTDOWN_TIMEOUT = 10.0
SMTP_TIMEOUT = 0.5  # a claimed, unsent row is retried SMTP_TIMEOUT x (BATCH + 1) s later
MAIL_RELAY_INTERVAL = 0.1
MAIL_RETRY_MAX = 2.0  # a send that failed in the drain is tried again within this


def mail_wait() -> float:
    """How long the next mail may take once the second users process serves: a row the
    first had claimed waits out its lease, one that failed its backoff, then one poll and
    one send; PROCESS_MARGIN for a loaded machine (services/users/mail_relay.py)."""
    lease = SMTP_TIMEOUT * (BATCH + 1)
    return max(lease, MAIL_RETRY_MAX) + MAIL_RELAY_INTERVAL + SMTP_TIMEOUT + PROCESS_MARGIN


CLIENTS = 8
NO_WORK = "no work left"  # a call's outcome once its finite work ran out
RELAY_JOBS = 20  # in progress, completed by CLIENTS loops; SIGTERM after 6


async def load_then_sigterm(
    service: ServiceProcess, port: int, call: Callable[[], Awaitable[str]], signal_after: int = 100
) -> tuple[Counter[str], float]:
    """CLIENTS loops of `call` (returns an outcome label, 'ok' for success); SIGTERM once
    `signal_after` have succeeded; the loops stop at their first failure after the signal.
    A call whose finite work ran out answers NO_WORK without awaiting anything: its loop
    then waits for the signal (a loop that went on calling would never yield, and the
    signal would never be sent: CI hung so once the clients finished every job first)."""
    outcomes: Counter[str] = Counter()
    enough = asyncio.Event()
    signalled = asyncio.Event()

    async def client() -> None:
        while True:
            outcome = await call()
            if outcome == NO_WORK:
                outcomes[outcome] += 1
                enough.set()  # the run goes on to its signal and its checks
                await signalled.wait()
                return
            if outcome != "ok" and not signalled.is_set():
                outcomes[f"before SIGTERM: {outcome}"] += 1
            outcomes[outcome] += 1
            if outcomes["ok"] >= signal_after:
                enough.set()
            if outcome != "ok" and signalled.is_set():
                return

    clients = [asyncio.create_task(client()) for _ in range(CLIENTS)]
    await asyncio.wait_for(enough.wait(), PROCESS_MARGIN)
    began = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    signalled.set()
    await service.wait_not_listening(port, PROCESS_MARGIN)
    await asyncio.wait_for(asyncio.gather(*clients), SHUTDOWN_TIMEOUT + PROCESS_MARGIN)
    code = await asyncio.to_thread(service.proc.wait, SHUTDOWN_TIMEOUT + PROCESS_MARGIN)
    took = time.monotonic() - began
    assert code == 0, service.log.read_text()[-3000:]
    assert took < SHUTDOWN_TIMEOUT + PROCESS_MARGIN, took
    errors = [line for line in service.log.read_text().splitlines() if '"level":"error"' in line]
    assert errors == [], errors[:3]
    assert not [k for k in outcomes if k.startswith("before SIGTERM")], outcomes
    return outcomes, took


async def test_sigterm_under_http_write_load(departments_dsn: str, tmp_path: Path) -> None:
    env = common_env("departments", departments_dsn, SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT))
    service = await start("departments", env, tmp_path / "svc.log")
    headers = bearer(Role.ADMIN)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SHUTDOWN_TIMEOUT))

    async def create() -> str:
        body = {"name": f"s-{uuid.uuid4().hex}", "address": "2 Drain St"}
        try:
            async with http.post(f"{service.url}/v1/departments", json=body, headers=headers) as r:
                await r.read()
                return "ok" if r.status == 201 else f"HTTP {r.status}"
        except aiohttp.ClientConnectionError:
            return "connection refused or closed"

    try:
        outcomes, took = await load_then_sigterm(service, service.port, create)
    finally:
        await http.close()
        service.stop()
    # every answer that arrived was a success: nothing in flight was cut or failed
    assert {k for k in outcomes if k.startswith("HTTP")} == set(), outcomes
    figures.add("SIGTERM under load survived", 1)
    print(f"http SIGTERM: {dict(outcomes)}, exit after {took:.2f}s")


async def test_sigterm_under_grpc_load(points_dsn: str, tmp_path: Path) -> None:
    env = points_env(points_dsn, SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT))
    service = await start("points", env, tmp_path / "points.log")
    grpc_port = int(env["POINTS_GRPC_PORT"])
    pool = ChannelPool(f"127.0.0.1:{grpc_port}", 2)
    get = pool.unary("/point.PointServer/GetUserPoints", PointReply.parse)

    async def call() -> str:
        try:
            await get(PointRequest(user_id=str(uuid.uuid4())), timeout=SHUTDOWN_TIMEOUT)
            return "ok"
        except grpc.aio.AioRpcError as exc:
            return f"gRPC {exc.code().name}"

    try:
        outcomes, took = await load_then_sigterm(service, grpc_port, call)
    finally:
        await pool.close()
        service.stop()
    # after the signal a new call is refused: UNAVAILABLE, or CANCELLED when it reached a
    # connection of the stopping server (grpc core's answer; the call never ran) ...
    assert set(outcomes) <= {"ok", "gRPC UNAVAILABLE", "gRPC CANCELLED"}, outcomes
    # ... and every call the server started finished OK
    ran = [line for line in service.log.read_text().splitlines() if '"event":"grpc"' in line]
    assert len(ran) >= outcomes["ok"]
    assert all('"code":"OK"' in line for line in ran), [x for x in ran if '"OK"' not in x][:3]
    figures.add("SIGTERM under load survived", 1)
    print(f"grpc SIGTERM: {dict(outcomes)}, exit after {took:.2f}s")


async def completed_jobs(orders_dsn: str) -> set[str]:
    async with pg.connected(orders_dsn) as conn:
        rows = await conn.fetch("SELECT id FROM jobs WHERE status = 'COMPLETED'")
        return {str(r["id"]) for r in rows}


async def test_sigterm_orders_and_its_outbox_relay_under_completion_load(
    migrated_db: Callable[[str], str], catalog: ServiceProcess, tmp_path: Path
) -> None:
    """SIGTERM while jobs complete and the relay delivers their awards: exit 0 within
    SHUTDOWN_TIMEOUT, no error line, every answered completion a 200; the process started
    again delivers what was left, each award exactly once."""
    orders_dsn, points_dsn = migrated_db("orders"), migrated_db("points")
    points, p_env = await start_points(points_dsn, tmp_path / "points.log")
    env = relay_env(orders_dsn, catalog.url, p_env, SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT))
    orders = await start("orders", env, tmp_path / "orders.log")
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    acknowledged: list[str] = []
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SHUTDOWN_TIMEOUT))
    try:
        service_id = await catalog_service(http, catalog.url, provider)
        steps = Orders(http, orders.url, service_id, customer, provider)
        waiting = await steps.jobs(RELAY_JOBS, "IN_PROGRESS")

        async def complete() -> str:
            if not waiting:
                return NO_WORK
            job_id = waiting.pop()
            url = f"{orders.url}/v1/jobs/{job_id}/complete"
            try:
                async with http.post(url, headers=provider.headers) as r:
                    await r.read()
                    if r.status != 200:
                        return f"HTTP {r.status}"
            except aiohttp.ClientConnectionError:
                return "connection refused or closed"
            acknowledged.append(job_id)
            return "ok"

        outcomes, took = await load_then_sigterm(orders, orders.port, complete, signal_after=6)
        assert {k for k in outcomes if k.startswith("HTTP")} == set(), outcomes
        # what the stopped process left in the outbox, the next one delivers
        left = await undelivered(orders_dsn)
        orders = await start("orders", env, tmp_path / "orders2.log")
        await settle(orders_dsn)
    finally:
        await http.close()
        orders.stop()
        points.stop()
    done = await completed_jobs(orders_dsn)
    assert set(acknowledged) <= done  # an acknowledged completion is never lost
    lost = await awards_once(points_dsn, sorted(done), str(provider.id))
    logs = [orders.log, tmp_path / "orders.log", points.log]
    assert error_lines(*logs) == []
    tokens = [who.headers["Authorization"].split()[1] for who in (customer, provider)]
    assert secrets_in(logs, *tokens) == []
    figures.add("SIGTERM under load survived", 1)
    figures.add("acknowledged writes", len(acknowledged))
    figures.add("acknowledged writes lost", lost)
    print(f"orders + relay SIGTERM: {dict(outcomes)}, exit after {took:.2f}s, "
          f"{len(done)} awards once each, {left} of them by the next process")  # fmt: skip


async def test_sigterm_users_and_its_mail_relay_under_registration_load(
    users_dsn: str, tmp_path: Path
) -> None:
    """SIGTERM while accounts register and the mail relay sends their verification mails:
    exit 0 within SHUTDOWN_TIMEOUT, no error line, every answered registration a 201; the
    process started again sends what was left: every acknowledged account gets its mail."""
    with smtp_sink() as sink:
        env = users_env(
            users_dsn,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(sink.port),
            SMTP_TIMEOUT=str(SMTP_TIMEOUT),
            MAIL_RELAY_INTERVAL=str(MAIL_RELAY_INTERVAL),
            MAIL_RETRY_MAX=str(MAIL_RETRY_MAX),
            STORAGE_DIR=str(tmp_path / "storage"),
            SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT),
        )
        users = await start("users", env, tmp_path / "users.log")
        acknowledged: list[str] = []
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SHUTDOWN_TIMEOUT))

        async def register() -> str:
            email = f"sig{uuid.uuid4().hex[:12]}@fixup.test"
            account = {
                "email": email, "password": PASSWORD, "first_name": "Ada",
                "last_name": "Lovelace", "phone_number": "+1 555 0100", "role": "CUSTOMER",
            }  # fmt: skip
            try:
                async with http.post(f"{users.url}/v1/auth/register", json=account) as r:
                    await r.read()
                    if r.status != 201:
                        return f"HTTP {r.status}"
            except aiohttp.ClientConnectionError:
                return "connection refused or closed"
            acknowledged.append(email)
            return "ok"

        try:
            outcomes, took = await load_then_sigterm(users, users.port, register, signal_after=20)
            assert {k for k in outcomes if k.startswith("HTTP")} == set(), outcomes
            left = len(await pending_recipients(users_dsn))
            users = await start("users", env, tmp_path / "users2.log")
            received: Counter[str] = Counter()
            while missing := set(acknowledged) - set(received):
                received[(await next_mail(sink, users_dsn, users.log, missing))["To"]] += 1
            await rest_of_outbox(sink, users_dsn, users.log, received)
        finally:
            await http.close()
            users.stop()
    logs = [tmp_path / "users.log", users.log]
    assert error_lines(*logs) == []
    assert secrets_in(logs, PASSWORD) == []
    figures.add("SIGTERM under load survived", 1)
    figures.add("acknowledged writes", len(acknowledged))
    figures.add("acknowledged writes lost", len(set(acknowledged) - set(received)))
    again = sum(n - 1 for n in received.values())
    print(f"users + mail relay SIGTERM: {dict(outcomes)}, exit after {took:.2f}s, "
          f"{left} mails left to the next process, {again} sent twice (at least once)")  # fmt: skip


async def next_mail(sink: SmtpSink, users_dsn: str, log: Path, missing: set[str]) -> Message:
    """The sink's next mail within mail_wait(); past it, a failure that says why: the
    acknowledged accounts without a mail and whether the sink ever accepted one for them,
    the rows still in the outbox (attempts, seconds to their next attempt, last error) and
    the relay's warnings in the second process's log."""
    try:
        return await sink.next_mail(mail_wait())
    except TimeoutError:
        rows = await pg.fetch(
            users_dsn,
            "SELECT attempts, extract(epoch FROM next_attempt_at - now()) AS due_in,"
            " last_error FROM mail_outbox ORDER BY next_attempt_at",
        )
        text = await asyncio.to_thread(log.read_text)
        warnings = [line for line in text.splitlines() if '"level":"warning"' in line]
        accepted = list(sink.accepted)
        raise AssertionError(
            f"no mail within {mail_wait():.1f} s for {sorted(missing)[:5]}"
            f" (the sink accepted {len(accepted)} mails, of them for these:"
            f" {[to for to in accepted if to in missing]});"
            f" outbox: {[dict(r) for r in rows][:10]};"
            f" relay warnings: {warnings[-5:]}"
        ) from None


async def rest_of_outbox(sink: SmtpSink, users_dsn: str, log: Path, received: Counter[str]) -> None:
    """The mails of committed but unacknowledged registrations too, until the outbox is
    empty. A row outlives its mail by a moment (the relay deletes it after the server's
    250), so a row whose mail has arrived is waited out, not waited for: it goes, or is
    sent again (at least once), within mail_wait()."""
    since = time.monotonic()
    while pending := await pending_recipients(users_dsn):
        unseen = set(pending) - set(received)
        if unseen:
            received[(await next_mail(sink, users_dsn, log, unseen))["To"]] += 1
            since = time.monotonic()
            continue
        try:
            received[(await sink.next_mail(MAIL_RELAY_INTERVAL))["To"]] += 1
            since = time.monotonic()
        except TimeoutError:
            waited = time.monotonic() - since
            assert waited < mail_wait(), f"rows of delivered mails stayed {waited:.1f} s"


async def pending_recipients(users_dsn: str) -> list[str]:
    return [r["recipient"] for r in await pg.fetch(users_dsn, "SELECT recipient FROM mail_outbox")]
