"""lib.http.conditional.SharedRead (ADR 0038): a caller gets a read that started after it
called, every caller that arrives during a read shares the next one, an error reaches that
read's callers only, and a caller that goes away cancels nobody's read."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from lib.db.pool import PoolExhausted
from lib.http.conditional import SharedRead
from tools.time_scale import scaled

SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="none")


class Source:
    """A value that each read returns and then bumps; `gate` holds a read in flight."""

    def __init__(self) -> None:
        self.value = 0
        self.reads = 0
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None
        self.contexts: list[str] = []
        self.cancelled = 0

    async def read(self) -> int | None:
        self.reads += 1
        self.contexts.append(SEEN.get())
        value = self.value  # what a statement sees: the state when it starts
        self.started.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.fail is not None:
            raise self.fail
        return value


async def test_a_caller_arriving_during_a_read_gets_the_next_one() -> None:
    source = Source()
    shared = SharedRead(source.read)
    source.gate.clear()
    first = asyncio.create_task(shared.get())
    await source.started.wait()  # the first read runs, holding the old value
    source.value = 1  # a write commits while it runs
    late = [asyncio.create_task(shared.get()) for _ in range(5)]
    await asyncio.sleep(0)
    source.gate.set()
    assert await first == 0
    assert await asyncio.gather(*late) == [1, 1, 1, 1, 1]  # never the read older than them
    assert source.reads == 2  # the five late callers shared one read


async def test_callers_at_once_share_one_read() -> None:
    source = Source()
    shared = SharedRead(source.read)
    assert await asyncio.gather(*(shared.get() for _ in range(20))) == [0] * 20
    assert source.reads == 1
    source.value = 7
    assert await shared.get() == 7  # nothing in flight: a read of its own
    assert source.reads == 2


@pytest.mark.parametrize(
    "error", [OSError("the database went away"), TimeoutError("the read's own bound")]
)
async def test_an_error_reaches_the_callers_of_that_read_only(error: Exception) -> None:
    source = Source()
    shared = SharedRead(source.read, scaled(5))  # a read's own TimeoutError is not the bound's
    source.fail = error
    results = await asyncio.gather(*(shared.get() for _ in range(3)), return_exceptions=True)
    assert [type(r) for r in results] == [type(error)] * 3
    source.fail = None
    assert await shared.get() == 0  # the next caller reads again


async def test_a_caller_that_goes_away_cancels_nobodys_read() -> None:
    source = Source()
    shared = SharedRead(source.read)
    source.gate.clear()
    gone = asyncio.create_task(shared.get())
    await source.started.wait()
    staying = asyncio.create_task(shared.get())  # waits for the next read
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    source.gate.set()
    assert await staying == 0
    assert source.reads == 2


async def test_the_read_runs_outside_the_callers_context() -> None:
    """No request's connection scope (lib.db.scope) leaks into the shared read."""
    source = Source()
    shared = SharedRead(source.read)
    SEEN.set("a request's")
    assert await shared.get() == 0
    assert source.contexts == ["none"]


async def test_a_caller_waits_at_most_its_bound_and_the_read_goes_on() -> None:
    """A read stuck on a frozen database: its callers and those queued for the next read
    get the pool's 503 once the bound (the acquire timeout) passes, not the read's command
    timeout; the stuck read is not cancelled, and a caller still within its bound gets the
    next read's answer once the database answers again."""
    source = Source()
    bound = scaled(0.1)  # the late caller gets its answer within it on a loaded machine
    shared = SharedRead(source.read, bound)
    source.gate.clear()
    first = asyncio.create_task(shared.get())
    await source.started.wait()  # the read runs, and hangs
    queued = [asyncio.create_task(shared.get()) for _ in range(3)]  # for the next read
    loop = asyncio.get_running_loop()
    began = loop.time()
    results = await asyncio.gather(first, *queued, return_exceptions=True)
    assert [type(r) for r in results] == [PoolExhausted] * 4, results
    assert loop.time() - began >= bound * 0.9  # none gave up before its bound
    assert source.reads == 1  # the stuck read goes on: not cancelled, not read again
    assert source.cancelled == 0
    late = asyncio.create_task(shared.get())  # queued for the next read too
    source.value = 1
    source.gate.set()  # the database answers again
    assert await late == 1  # the read after the stuck one, within its bound
    assert source.cancelled == 0
