"""The failover drill's writer: one client committing numbered rows one by one through
whatever route a database offers, reconnecting after any failure, and what it saw; `drive`
runs one fault under it and counts what the database kept (every drill's faults)."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg

from tools.drills.ha_faults import FAULT_LIMIT, RECOVERY_LIMIT, Healing, Injected, nothing_to_heal
from tools.local.local_servers import StartError, wait_until

STATEMENT_TIMEOUT = 3.0  # a write's bound: past it, a failure counted, never a hang
CONNECT_TIMEOUT = 2
WARM_WRITES = 30


class Client(Protocol):
    errors: tuple[type[Exception], ...]

    def write(self, n: int) -> None: ...

    def reset(self) -> None: ...


class PgWrites:
    """Rows into drill_writes through one DSN (HAProxy's address, or a multi-host list)."""

    errors: tuple[type[Exception], ...] = (psycopg.Error,)

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def write(self, n: int) -> None:
        if self.conn is None:
            self.conn = psycopg.connect(
                self.dsn,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                options=f"-c statement_timeout={int(STATEMENT_TIMEOUT * 1000)}",
            )
        self.conn.execute("INSERT INTO drill_writes (id) VALUES (%s)", (n,))

    def reset(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None


@dataclass
class Writer:
    """One client committing numbered rows one by one, reconnecting after any failure."""

    client: Client
    acked: list[tuple[int, float, float]] = field(default_factory=list)  # id, start, end
    failures: Counter[str] = field(default_factory=Counter)
    longest_failure: float = 0.0
    failed_at: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            began = time.monotonic()
            try:
                self.client.write(n)
                self.acked.append((n, began, time.monotonic()))
            except self.client.errors as exc:
                self.failures[type(exc).__name__] += 1
                self.failed_at.append(began)
                self.longest_failure = max(self.longest_failure, time.monotonic() - began)
                self.client.reset()
                self.stop.wait(0.05)  # a retry's pause, not a synchronisation
        self.client.reset()

    def first_failure_after(self, moment: float) -> float | None:
        return next((t for t in self.failed_at if t > moment), None)

    def recovered_since(self, moment: float) -> bool:
        """A write acknowledged since the first failure after `moment` (or, none, a second on)."""
        outage = self.first_failure_after(moment)
        if outage is None:
            return time.monotonic() - moment > 1.0 and self.acked_after(moment) > 0
        return self.acked_after(outage) > 0

    def acked_after(self, moment: float) -> int:
        return sum(1 for _, start, _ in self.acked if start > moment)


def _latency(writes: list[tuple[int, float, float]]) -> str:
    ms = sorted((end - start) * 1000 for _, start, end in writes)
    if len(ms) < 2:
        return "n/a"
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"{statistics.median(ms):.1f}/{p99:.1f} ms"


@dataclass(frozen=True)
class FaultResult:
    fault: str
    recovery_seconds: float
    failures: dict[str, int]
    latency: tuple[str, str, str]  # before, during, after
    lost: list[int]
    duplicated: list[int]
    longest_failure: float
    bound: float = STATEMENT_TIMEOUT + CONNECT_TIMEOUT  # what no failed write may outlast
    allowed_loss: int = 0  # the databases: RPO 0; Redis: the one write in flight (async)

    @property
    def passed(self) -> bool:
        return len(self.lost) <= self.allowed_loss and not self.duplicated


def drive(
    client: Client,
    inject: Callable[[], Injected],
    diagnose: Callable[[], str],
    count: Callable[[list[int]], dict[int, int]],
    settle: Callable[[], None] = nothing_to_heal,
) -> FaultResult:
    """Writes flowing, the fault injected, writes flowing again, the fault healed and the
    cluster settled (`settle`); -> what the writer saw against what the database holds
    (`count`: acknowledged id -> rows present)."""
    writer = Writer(client)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(writer.acked) >= WARM_WRITES, "warm-up writes", RECOVERY_LIMIT)
        killed_at = time.monotonic()
        injected = inject()
        what = injected.what
        healing = Healing(injected)
        after = f"a write after {what}"
        wait_until(lambda: writer.recovered_since(killed_at), after, FAULT_LIMIT)
        healing.join(what)
        settle()
        # a backend outlives its postmaster for a moment: the outage begins at the first
        # write that failed after the kill, and ends when the next one is acknowledged (a
        # fault that fails no write, only holds it: when the first one begun after it is)
        outage = writer.first_failure_after(killed_at)
        first = min((e for _, s, e in writer.acked if s > (outage or killed_at)), default=None)
        recovered_at = time.monotonic()
        wait_until(
            lambda: writer.acked_after(recovered_at) >= WARM_WRITES,
            f"writes flowing again after {what}",
            RECOVERY_LIMIT,
        )
    except StartError as exc:
        raise StartError(f"{exc}; failed writes {dict(writer.failures)}; {diagnose()}") from None
    finally:
        writer.stop.set()
        thread.join(STATEMENT_TIMEOUT + CONNECT_TIMEOUT + 5)
    acked_ids = [n for n, _, _ in writer.acked]
    present = count(acked_ids)
    return FaultResult(
        fault=what,
        recovery_seconds=(first or killed_at) - killed_at,
        failures=dict(writer.failures),
        latency=(
            _latency([w for w in writer.acked if w[2] < killed_at]),
            _latency([w for w in writer.acked if killed_at <= w[1] < recovered_at]),
            _latency([w for w in writer.acked if w[1] >= recovered_at]),
        ),
        lost=[n for n in acked_ids if n not in present],
        duplicated=[n for n, c in present.items() if c > 1],
        longest_failure=writer.longest_failure,
    )
