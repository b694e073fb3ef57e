"""A bulkhead: blocking work (decoding, hashing) off the event loop in a few threads, with
at most `queue` calls waiting for one. One more is refused at once with 503 and
Retry-After instead of queueing without bound: a burst can hold at most
`workers + queue` inputs in memory, and only `workers` of them are being worked on."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from lib.errors import ServiceUnavailable

P = ParamSpec("P")
T = TypeVar("T")


class BulkheadFull(ServiceUnavailable):
    """Every slot (running and waiting) is taken: 503 with Retry-After."""


class Bulkhead:
    def __init__(self, name: str, *, workers: int, queue: int) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be >= 1 and queue >= 0")
        self.name = name
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._capacity = workers + queue
        self._pending = 0

    @property
    def pending(self) -> int:
        """Calls running or waiting now."""
        return self._pending

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` in a worker thread; BulkheadFull when no slot is free."""
        if self._pending >= self._capacity:
            raise BulkheadFull(f"too many {self.name} calls in progress", retry_after=1.0)
        self._pending += 1
        try:
            call = functools.partial(fn, *args, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
