"""The points awards of completed jobs end to end, as processes: points (gRPC, MariaDB),
orders with its outbox relay pointed at it, catalog for the service. What the fault and
shutdown tests read back: the outbox drained, and the points ledger holding each award's
key exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from tests import pg
from tests.reliability.stack import common_env, points_env, start
from tools.local.dbadmin import mysql_connect
from tools.local.service_process import ServiceProcess
from tools.time_scale import scaled

POINTS_PER_JOB = 10
SETTLE = scaled(30.0)  # the relay needs ~1 s after points is back; far more is allowed
POINTS_TIMEOUT = 0.5  # ORDERS_POINTS_TIMEOUT: a leased row is retried 0.5 x (batch + 1) s later
BATCH = 2


def relay_env(
    orders_dsn: str, catalog_url: str, points: dict[str, str], **extra: str
) -> dict[str, str]:
    """Orders with its relay on: short poll, short backoff, small batches (short leases)."""
    return common_env(
        "orders",
        orders_dsn,
        DB_POOL_MAX="4",
        ORDERS_CATALOG_URL=catalog_url,
        ORDERS_USERS_URL="http://127.0.0.1:9",  # no users: orders keep no name snapshot
        ORDERS_POINTS_GRPC_ADDR=f"127.0.0.1:{points['POINTS_GRPC_PORT']}",
        ORDERS_POINTS_TIMEOUT=str(POINTS_TIMEOUT),
        ORDERS_POINTS_PER_JOB=str(POINTS_PER_JOB),
        ORDERS_OUTBOX_INTERVAL="0.1",
        ORDERS_OUTBOX_RETRY_MAX="0.5",
        ORDERS_OUTBOX_BATCH=str(BATCH),
        **extra,
    )


async def start_points(
    points_dsn: str, log: Path, env: dict[str, str] | None = None
) -> tuple[ServiceProcess, dict[str, str]]:
    """A points process; pass the env of a killed one to restart it on the same ports."""
    env = env or points_env(points_dsn)
    return await start("points", env, log), env


async def undelivered(orders_dsn: str) -> int:
    return int(
        await pg.fetchval(orders_dsn, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL")
    )


async def settle(orders_dsn: str, bound: float = SETTLE) -> float:
    """Wait until the relay has delivered every award (a bounded poll); the seconds it took."""
    began = time.monotonic()
    while (left := await undelivered(orders_dsn)) > 0:
        assert time.monotonic() - began < bound, f"{left} awards undelivered after {bound}s"
        await asyncio.sleep(0.1)
    return time.monotonic() - began


def ledger(points_dsn: str) -> tuple[Counter[str], dict[str, int]]:
    """(rows per idempotency key, balance per user) of the points database."""
    database = urlsplit(points_dsn).path.lstrip("/")
    with mysql_connect(points_dsn, database=database) as conn, conn.cursor() as cur:
        cur.execute("SELECT idempotency_key, count(*) FROM points_ledger GROUP BY 1")
        keys = Counter({str(key): int(n) for key, n in cur.fetchall()})
        cur.execute("SELECT user_id, points FROM user_points")
        balances = {str(user): int(points) for user, points in cur.fetchall()}
    return keys, balances


async def awards_once(points_dsn: str, completed: list[str], provider: str) -> int:
    """Assert every completed job's award is in the ledger exactly once (and no other
    award), the provider's balance their sum; returns how many were lost (0)."""
    keys, balances = await asyncio.to_thread(ledger, points_dsn)
    expected = {f"job:{job_id}" for job_id in completed}
    lost = len(expected - set(keys))
    assert lost == 0, f"{lost} acknowledged completions without their award"
    assert set(keys) == expected, set(keys) ^ expected
    assert set(keys.values()) <= {1}, [k for k, n in keys.items() if n > 1]
    assert balances.get(provider) == POINTS_PER_JOB * len(completed), balances
    return lost


def error_lines(*logs: Path) -> list[str]:
    """Error lines and tracebacks of the logs (a clean run has none)."""
    return [
        line
        for log in logs
        for line in log.read_text().splitlines()
        if '"level":"error"' in line or "Traceback" in line
    ]


def secrets_in(logs: list[Path], *secrets: str) -> list[str]:
    """Which of `secrets` (tokens, passwords) any of the logs contains (none may)."""
    texts = [log.read_text() for log in logs]
    return [secret[:12] + "…" for secret in secrets if any(secret in t for t in texts)]
