"""Password hashing with argon2id.

Cost parameters come from the environment (cheap in tests; docs/architecture.md, "Ports
and settings"):
ARGON2_TIME_COST (default 3), ARGON2_MEMORY_COST in KiB (default 32768),
ARGON2_PARALLELISM (default 1) — the users service's defaults (ADR 0010). They are read
once, on first use.

A server hashes through `BoundedHasher`: argon2id costs tens of milliseconds of CPU by
design, so it runs in a small thread pool (argon2-cffi releases the GIL) instead of on the
event loop, and at most `workers + queue` hashes wait there; one more is refused at once
with 503 and Retry-After instead of queueing without bound behind a login storm.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from functools import cache
from typing import Literal

from argon2 import PasswordHasher, Type
from argon2.exceptions import Argon2Error

from lib.errors import ServiceUnavailable
from lib.resilience.bulkhead import Bulkhead

ARGON2_DEFAULTS = {"ARGON2_TIME_COST": 3, "ARGON2_MEMORY_COST": 32768, "ARGON2_PARALLELISM": 1}


def _setting(name: str) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return ARGON2_DEFAULTS[name]
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value


@cache
def hasher() -> PasswordHasher:
    """The process-wide argon2id hasher, configured from ARGON2_* on first call."""
    return PasswordHasher(
        time_cost=_setting("ARGON2_TIME_COST"),
        memory_cost=_setting("ARGON2_MEMORY_COST"),
        parallelism=_setting("ARGON2_PARALLELISM"),
        type=Type.ID,
    )


def hash_password(password: str) -> str:
    """An argon2id PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`)."""
    return hasher().hash(password)


def verify_password(hash: str, password: str) -> bool:
    """True when `password` matches `hash`; False on a mismatch or a malformed hash."""
    try:
        return hasher().verify(hash, password)
    except (Argon2Error, ValueError):  # ValueError: InvalidHashError, non-ASCII hash
        return False


def make_hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    """An argon2id hasher with explicit parameters (a service's ARGON2_* settings)."""
    return PasswordHasher(
        time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
    )


HASHING_NICENESS = 10  # steps below the thread that starts the hashing thread (at most 19)
MAX_NICENESS = 19


def default_workers() -> int:
    """Hashing threads: one fewer than the cores this process may run on (at least one), so
    a login storm always leaves a core to the event loop (ADR 0010)."""
    return max(1, len(os.sched_getaffinity(0)) - 1)


Priority = Literal["idle", "nice"]


def _yield_to_the_loop(priority: Priority) -> None:
    """Lower this hashing thread's priority (Linux scheduling policy and nice value are per
    thread) so a contended core goes to the event loop and /health keeps its latency during
    a login storm (ADR 0010). "idle": SCHED_IDLE, the thread runs only when no normal
    thread wants the core (falls back to nice where refused); "nice": 10 steps nicer than
    the loop (whose niceness a new thread inherits, so a service started under `nice` keeps
    the gap), hashes keep a share of a host busy with other work. A no-op where neither is
    allowed."""
    if priority == "idle":
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
    with contextlib.suppress(AttributeError, OSError):
        thread = threading.get_native_id()
        inherited = os.getpriority(os.PRIO_PROCESS, thread)
        niceness = min(MAX_NICENESS, inherited + HASHING_NICENESS)
        os.setpriority(os.PRIO_PROCESS, thread, niceness)


class HashingBusy(ServiceUnavailable):
    """Every hashing slot is taken: 503 with Retry-After."""


class BoundedHasher:
    """argon2id off the event loop, in `workers` threads with at most `queue` waiting."""

    def __init__(
        self, hasher: PasswordHasher, *, workers: int, queue: int, priority: Priority = "nice"
    ) -> None:
        self._hasher = hasher
        # the threads every hash runs in (public: a caller may run its own call there)
        self.bulkhead = Bulkhead(
            "argon2",
            workers=workers,
            queue=queue,
            busy=HashingBusy,
            busy_message="too many password checks in progress",
            thread_init=_yield_to_the_loop,
            thread_args=(priority,),
        )
        # an unknown email is checked against this, so it costs what a wrong password costs
        self._decoy: str | None = None  # made on first need: starting stays cheap

    @property
    def pending(self) -> int:
        return self.bulkhead.pending

    async def hash(self, password: str) -> str:
        return await self.bulkhead.run(self._hasher.hash, password)

    async def verify(self, hash: str | None, password: str) -> bool:
        """True when `password` matches `hash`; `hash=None` (no such account) costs the same
        as a mismatch and is False."""
        if hash is None and self._decoy is None:
            self._decoy = await self.bulkhead.run(self._hasher.hash, secrets.token_hex(16))
        ok = await self.bulkhead.run(self._check, hash or self._decoy or "", password)
        return ok and hash is not None

    def _check(self, hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(hash, password)
        except (Argon2Error, ValueError):
            return False

    def close(self) -> None:
        self.bulkhead.close()
