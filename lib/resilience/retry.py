"""Retry with lib's backoff (lib/backoff.py)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from lib.backoff import backoff
from lib.errors import CircuitOpen

T = TypeVar("T")


async def retry(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    base_delay: float = 0.05,
    max_delay: float = 1.0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: Callable[[], float] = random.random,
) -> T:
    """Call `fn` up to `attempts` times; re-raise the last error.

    Before retry n (0-based) sleep `backoff(n, base_delay, max_delay)` (lib/backoff.py).
    CircuitOpen (the breaker already decided) and cancellation are never retried.
    """
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    for n in range(attempts):
        try:
            return await fn()
        except (CircuitOpen, asyncio.CancelledError):
            raise
        except retry_on:
            if n == attempts - 1:
                raise
            await sleep(backoff(n, base_delay, max_delay, rng))
    raise AssertionError("unreachable")
