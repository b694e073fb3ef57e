"""The failover drill's writer: one client committing numbered rows one by one through
whatever route a database offers, reconnecting after any failure, and what it saw."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
import pymysql

STATEMENT_TIMEOUT = 3.0  # a write's bound: past it, a failure counted, never a hang
CONNECT_TIMEOUT = 2


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


class NoWritableServerError(Exception):
    """None of a MariaDB writer's addresses takes writes (yet)."""


class MariaWrites:
    """Rows into drill_writes on whichever of the addresses is open for writes: the
    primary, or the replica once `promote` has opened it."""

    errors: tuple[type[Exception], ...] = (pymysql.MySQLError, OSError, NoWritableServerError)

    def __init__(self, ports: tuple[int, ...], database: str) -> None:
        self.ports = ports
        self.database = database
        self.conn: pymysql.connections.Connection[Any] | None = None

    def _writable(self) -> pymysql.connections.Connection[Any]:
        for port in self.ports:
            try:
                conn = pymysql.connect(
                    host="127.0.0.1",
                    port=port,
                    user="root",
                    database=self.database,
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT,
                    read_timeout=int(STATEMENT_TIMEOUT),
                    write_timeout=int(STATEMENT_TIMEOUT),
                )
            except pymysql.MySQLError:
                continue
            with conn.cursor() as cur:
                cur.execute("SELECT @@read_only")
                row = cur.fetchone()
            if row is not None and int(row[0]) == 0:
                return conn
            conn.close()
        raise NoWritableServerError(f"no writable server among {self.ports}")

    def write(self, n: int) -> None:
        if self.conn is None:
            self.conn = self._writable()
        with self.conn.cursor() as cur:
            cur.execute("INSERT INTO drill_writes (id) VALUES (%s)", (n,))

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
        """A write acknowledged after the first failure that followed `moment` (or after
        `moment` once a second has passed with no failure at all)."""
        outage = self.first_failure_after(moment)
        if outage is None:
            return time.monotonic() - moment > 1.0 and self.acked_after(moment) > 0
        return self.acked_after(outage) > 0

    def acked_after(self, moment: float) -> int:
        return sum(1 for _, start, _ in self.acked if start > moment)
