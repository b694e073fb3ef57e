"""A bulkhead: blocking work in a few threads, a bounded queue, 503 when it is full.

At most `queue` calls wait for a thread; one more is refused at once with Retry-After
instead of queueing without bound: a burst can hold at most `workers + queue` inputs in
memory, and only `workers` of them are being worked on."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from lib.errors import ServiceUnavailable

P = ParamSpec("P")
T = TypeVar("T")


class BulkheadFull(ServiceUnavailable):
    """Every slot (running and waiting) is taken: 503 with Retry-After."""


class Bulkhead:
    """A refused call raises `busy` (a 503 with Retry-After: 1; BulkheadFull unless the
    owner names its own); `thread_init(*thread_args)` runs once in each worker thread."""

    def __init__(
        self,
        name: str,
        *,
        workers: int,
        queue: int,
        busy: type[ServiceUnavailable] = BulkheadFull,
        busy_message: str = "",
        thread_init: Callable[..., object] | None = None,
        thread_args: tuple[Any, ...] = (),
    ) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be >= 1 and queue >= 0")
        self.name = name
        self._executor = ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix=name,
            initializer=thread_init,
            initargs=thread_args,
        )
        self._workers = workers
        self._capacity = workers + queue
        self._pending = 0
        self._busy = busy
        self._busy_message = busy_message or f"too many {name} calls in progress"

    @property
    def pending(self) -> int:
        """Calls running or waiting now."""
        return self._pending

    @property
    def workers(self) -> int:
        """The worker threads: calls that run at once."""
        return self._workers

    @property
    def capacity(self) -> int:
        """Calls running or waiting at most (workers + queue); one more is `busy`."""
        return self._capacity

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` in a worker thread; `busy` when no slot is free."""
        if self._pending >= self._capacity:
            raise self._busy(self._busy_message)
        self._pending += 1
        try:
            call = functools.partial(fn, *args, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
