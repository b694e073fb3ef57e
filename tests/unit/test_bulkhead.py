"""lib/resilience/bulkhead on its own (BoundedHasher's use of it is tests/unit/test_passwords):
the work runs in the named worker threads with their initializer, `workers + queue` calls at
most are held, one more is refused at once with the owner's 503 (or BulkheadFull and a
message naming the bulkhead), a slot comes back however the call ends, and bad sizes are
refused."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from lib.errors import ServiceUnavailable
from lib.resilience.bulkhead import Bulkhead, BulkheadFull


class Busy(ServiceUnavailable):
    pass


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Holds the workers until set (set again at the end so no thread is left waiting)."""
    event = threading.Event()
    yield event
    event.set()


class Started:
    """Work that reports, from its worker thread, that it began, then waits for `gate`."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate
        self.loop = asyncio.get_running_loop()
        self.began: asyncio.Queue[int] = asyncio.Queue()

    def __call__(self, n: int) -> int:
        self.loop.call_soon_threadsafe(self.began.put_nowait, n)
        self.gate.wait(5)
        return n

    async def next(self) -> int:
        async with asyncio.timeout(5):
            return await self.began.get()


async def test_the_work_runs_in_the_named_threads_after_their_initializer() -> None:
    seen: list[tuple[str, str]] = []

    def init(tag: str, other: str) -> None:
        seen.append((threading.current_thread().name, f"{tag}{other}"))

    def work(a: int, *, b: int) -> tuple[int, str]:
        return a + b, threading.current_thread().name

    bulkhead = Bulkhead("decode", workers=1, queue=0, thread_init=init, thread_args=("x", "y"))
    try:
        total, thread = await bulkhead.run(work, 2, b=3)
        assert total == 5
        assert thread.startswith("decode")
        assert thread != threading.current_thread().name
        assert seen == [(thread, "xy")]
        assert bulkhead.name == "decode"
        assert bulkhead.pending == 0
    finally:
        bulkhead.close()


async def test_workers_plus_queue_calls_are_held_and_one_more_is_refused(
    gate: threading.Event,
) -> None:
    held = Started(gate)
    bulkhead = Bulkhead("decode", workers=2, queue=1)
    try:
        calls = [asyncio.create_task(bulkhead.run(held, n)) for n in range(3)]
        assert {await held.next(), await held.next()} == {0, 1}  # both workers busy
        assert bulkhead.pending == 3  # two running, one waiting
        with pytest.raises(BulkheadFull) as caught:
            await bulkhead.run(held, 9)
        assert caught.value.detail == "too many decode calls in progress"
        assert caught.value.retry_after == 1
        assert bulkhead.pending == 3  # the refused call took no slot
        gate.set()
        assert await asyncio.gather(*calls) == [0, 1, 2]
        assert bulkhead.pending == 0
        assert await bulkhead.run(held, 4) == 4  # the slots are back
    finally:
        bulkhead.close()


async def test_the_owner_names_its_error_and_message(gate: threading.Event) -> None:
    held = Started(gate)
    bulkhead = Bulkhead("argon2", workers=1, queue=0, busy=Busy, busy_message="too many logins")
    try:
        first = asyncio.create_task(bulkhead.run(held, 1))
        assert await held.next() == 1
        with pytest.raises(Busy) as caught:
            await bulkhead.run(held, 2)
        assert caught.value.detail == "too many logins"
        gate.set()
        assert await first == 1
    finally:
        bulkhead.close()


async def test_a_failing_call_gives_its_slot_back() -> None:
    bulkhead = Bulkhead("decode", workers=1, queue=0)

    def fail() -> None:
        raise ValueError("bad input")

    try:
        for _ in range(3):
            with pytest.raises(ValueError, match="bad input"):
                await bulkhead.run(fail)
            assert bulkhead.pending == 0
    finally:
        bulkhead.close()


async def test_a_cancelled_caller_gives_its_slot_back(gate: threading.Event) -> None:
    held = Started(gate)
    bulkhead = Bulkhead("decode", workers=1, queue=1)
    try:
        running = asyncio.create_task(bulkhead.run(held, 1))
        waiting = asyncio.create_task(bulkhead.run(held, 2))
        assert await held.next() == 1
        assert bulkhead.pending == 2
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert bulkhead.pending == 1
        gate.set()
        await running
        assert bulkhead.pending == 0
    finally:
        bulkhead.close()


async def test_close_drops_the_queued_work_and_does_not_wait(gate: threading.Event) -> None:
    held = Started(gate)
    bulkhead = Bulkhead("decode", workers=1, queue=1)
    running = asyncio.create_task(bulkhead.run(held, 1))
    queued = asyncio.create_task(bulkhead.run(held, 2))
    assert await held.next() == 1
    assert bulkhead.pending == 2
    bulkhead.close()  # returns with the first still running: no wait
    assert not gate.is_set()
    with pytest.raises(asyncio.CancelledError):
        await queued  # never started
    gate.set()
    assert await running == 1
    assert held.began.empty()


@pytest.mark.parametrize(("workers", "queue"), [(0, 0), (-1, 3), (1, -1)])
def test_bad_sizes_are_refused(workers: int, queue: int) -> None:
    with pytest.raises(ValueError, match=r"^workers must be >= 1 and queue >= 0$"):
        Bulkhead("decode", workers=workers, queue=queue)


def test_the_smallest_sizes_are_allowed() -> None:
    Bulkhead("decode", workers=1, queue=0).close()
