"""Circuit breaker: stop calling a dependency that keeps failing, then probe it again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from types import TracebackType
from typing import ParamSpec, TypeVar

from lib.errors import CircuitOpen

P = ParamSpec("P")
T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# The value of the `circuit_breaker_state{dependency}` gauge.
_GAUGE = {BreakerState.CLOSED: 0, BreakerState.OPEN: 1, BreakerState.HALF_OPEN: 2}


class CircuitBreaker:
    """`async with breaker:` or `await breaker.call(fn, *args)` around a dependency call.

    `failure_threshold` consecutive failures open it; while open every call fails fast
    with CircuitOpen. After `reset_timeout` seconds up to `half_open_max_calls` trial
    calls go through: a success closes it, a failure opens it again. An exception that
    is not one of `failure_exceptions` means the dependency answered, so it counts as a
    success; a cancellation counts as nothing.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        failure_exceptions: tuple[type[BaseException], ...] = (Exception,),
        on_state_change: Callable[[str, BreakerState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or half_open_max_calls < 1 or reset_timeout < 0:
            raise ValueError("thresholds must be >= 1 and reset_timeout >= 0")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.half_open_max_calls = half_open_max_calls
        self.failure_exceptions = failure_exceptions
        self.on_state_change = on_state_change
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trials = 0  # calls let through since HALF_OPEN began

    @property
    def state(self) -> BreakerState:
        """The current state; OPEN turns HALF_OPEN here once `reset_timeout` has passed."""
        if self._state is BreakerState.OPEN and self._retry_after() <= 0:
            self._set(BreakerState.HALF_OPEN)
        return self._state

    @property
    def is_open(self) -> bool:
        return self.state is BreakerState.OPEN

    def state_value(self) -> int:
        """0 closed, 1 open, 2 half-open: the `circuit_breaker_state` gauge value."""
        return _GAUGE[self.state]

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self:
            return await fn(*args, **kwargs)

    async def __aenter__(self) -> None:
        state = self.state
        if state is BreakerState.OPEN:
            raise CircuitOpen(f"{self.name} is unavailable", retry_after=self._retry_after())
        if state is BreakerState.HALF_OPEN:
            if self._trials >= self.half_open_max_calls:
                # the trial calls are still running; half-open already, so retry soon
                raise CircuitOpen(f"{self.name} is unavailable", retry_after=1)
            self._trials += 1

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, asyncio.CancelledError):
            if self._state is BreakerState.HALF_OPEN:
                self._trials = max(0, self._trials - 1)  # free the slot for another trial
        elif isinstance(exc, self.failure_exceptions):
            self._on_failure()
        else:
            self._on_success()

    def _on_success(self) -> None:
        if self._state is BreakerState.HALF_OPEN:
            self._set(BreakerState.CLOSED)
        elif self._state is BreakerState.CLOSED:
            self._failures = 0
        # a call started before the breaker opened tells nothing about the dependency now

    def _on_failure(self) -> None:
        if self._state is BreakerState.HALF_OPEN:
            self._open()
        elif self._state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._set(BreakerState.OPEN)

    def _retry_after(self) -> float:
        """Seconds until an OPEN breaker lets a trial call through."""
        return self._opened_at + self.reset_timeout - self._clock()

    def _set(self, state: BreakerState) -> None:
        self._failures = 0
        self._trials = 0
        if state is self._state:
            return
        self._state = state
        if self.on_state_change is not None:
            self.on_state_change(self.name, state)
