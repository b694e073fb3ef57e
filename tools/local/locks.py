"""One lock per writing command, so two copies never both run (docs/operations.md, "Commands
that write").

- `file_lock(name)`: flock(2) on var/locks/<name>.lock, let go by the kernel when the
  holder exits, even killed.
- `database_lock(dsn, name)`: a session-level advisory lock of that database
  (pg_try_advisory_lock, MariaDB's GET_LOCK), let go when its connection ends.

A second copy waits up to LOCK_WAIT seconds (default 60; 0: refuse at once), saying once
what it waits for, then gives up with one line (`LockBusy`)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from lib.db.connecting import engine_of
from tools.local.databases import database_name
from tools.local.dbadmin import mysql_connect, psycopg_dsn

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "var" / "locks"
DEFAULT_WAIT = 60.0
POLL = 0.1  # seconds between two tries while a lock is held elsewhere


class LockBusy(RuntimeError):
    """Another copy held the lock for the whole wait; the message is one line to print."""


def env_seconds(var: str, default: float, *, zero_ok: bool = False) -> float:
    """Seconds from `var` (unset or empty: `default`), > 0 (>= 0 when `zero_ok`), <= 86400."""
    raw = os.environ.get(var, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{var}={raw!r} is not a number of seconds") from None
    if not (value >= 0 if zero_ok else value > 0) or value > 86400:
        raise ValueError(f"{var}={raw!r} must be {'>=' if zero_ok else '>'} 0 and <= 86400 seconds")
    return value


def acquire(
    take: Callable[[], bool], what: str, holder: Callable[[], str], wait: float | None
) -> None:
    """Call `take` until it returns True, for at most `wait` seconds (None: LOCK_WAIT),
    saying once what it waits for; LockBusy after that."""
    seconds = env_seconds("LOCK_WAIT", DEFAULT_WAIT, zero_ok=True) if wait is None else wait
    deadline = time.monotonic() + seconds
    said = False
    while not take():
        if time.monotonic() >= deadline:
            raise LockBusy(
                f"{what} is held by {holder()}: another copy is running; "
                f"gave up after {seconds:g} s (LOCK_WAIT), try again once it has finished"
            )
        if not said:
            print(
                f"waiting up to {seconds:g} s for {what}, held by {holder()} (LOCK_WAIT)",
                file=sys.stderr,
                flush=True,
            )
            said = True
        time.sleep(POLL)


@contextlib.contextmanager
def file_lock(name: str, *, wait: float | None = None, folder: Path = LOCKS) -> Iterator[None]:
    """Hold var/locks/<name>.lock (flock) for the block; the file keeps the holder's pid."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def take() -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def holder() -> str:
        pid = path.read_text().strip()
        return f"process {pid}" if pid else "another process"

    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    try:
        acquire(take, f"the lock {shown}", holder, wait)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def advisory_key(name: str) -> int:
    """A signed 64-bit key for pg_advisory_lock, the same for `name` everywhere."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


# take (1: taken), holder (its session; NULL: none), release, each given the lock's key
PG_LOCK = (
    "SELECT pg_try_advisory_lock(%s)",
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND ((classid::bigint << 32) | objid::bigint) = %s",
    "SELECT pg_advisory_unlock(%s)",
)
MY_LOCK = ("SELECT GET_LOCK(%s, 0)", "SELECT IS_USED_LOCK(%s)", "SELECT RELEASE_LOCK(%s)")


@contextlib.contextmanager
def database_lock(dsn: str, name: str, *, wait: float | None = None) -> Iterator[None]:
    """Hold the advisory lock `name` of the database of `dsn` for the block."""
    database = database_name(dsn)
    conn: Any
    key: int | str
    if engine_of(dsn) == "postgresql":
        conn = psycopg.connect(psycopg_dsn(dsn), autocommit=True)
        key = advisory_key(name)
        take, holder, release = PG_LOCK
        who = "server process"
    else:
        conn = mysql_connect(dsn)
        key = f"{database}:{name}"[:64]  # GET_LOCK names are server-wide, at most 64 chars
        take, holder, release = MY_LOCK
        who = "server connection"

    def one(sql: str) -> Any:
        with conn.cursor() as cur:
            cur.execute(sql, (key,))
            row = cur.fetchone()
        return row[0] if row else None

    def held_by() -> str:
        session = one(holder)
        return f"{who} {session}" if session else "a session that just ended"

    with conn:
        acquire(lambda: one(take) == 1, f"the {name} lock of database {database}", held_by, wait)
        try:
            yield
        finally:
            one(release)
