"""The loop every outbox relay shares (the users mail relay, the orders points relay).

A subclass implements `run_once()`: claim due rows in a connection scope of its own,
deliver them with no connection held, mark them. `run()` repeats it: at once when the
round was full (more may be due), else after a `wake()` (a handler just wrote a row) or
the poll interval. A failing round (the database away) is logged and tried again at the
next poll. `running(relay)` runs it for as long as its block lasts: on exit the relay is
told to stop (a flag, checked each round) and given half of `stop_within` to finish the
round in progress — a row it delivered is then marked, not delivered again by the next
process — then its task is cancelled, and the wait for it is bounded: a cancel alone can
be swallowed on 3.11 by any `asyncio.wait_for` beneath (a driver's I/O timeout), which
left a relay looping and an app's cleanup waiting forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass

from lib.backoff import backoff
from lib.logging import get_logger

log = get_logger("lib.relay")


@dataclass(frozen=True, slots=True)
class Round:
    claimed: int
    done: int  # delivered (or sent)


class Relay(ABC):
    name = "relay"  # the log event prefix: <name>_failed
    first_retry = 0.5  # s: the backoff doubles from here up to retry_max

    def __init__(self, *, interval: float, retry_max: float, batch: int) -> None:
        self.interval, self.retry_max, self.batch = interval, retry_max, batch
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """A handler wrote a row: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the round in progress, then leave the loop."""
        self._stopping = True
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt of a row that failed `attempts` times."""
        return backoff(attempts, self.first_retry, self.retry_max)

    @abstractmethod
    async def run_once(self) -> Round: ...

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before the round: a wake during it is not lost
            try:
                done = await self.run_once()
            except Exception as exc:  # the database is away: try again at the next poll
                log.warning(f"{self.name}_failed", error=repr(exc))
                done = Round(0, 0)
            if done.claimed >= self.batch:
                continue  # more may be due
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancel that
            # stops the relay when the wake-up lands at the same moment
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()


@contextlib.asynccontextmanager
async def running(relay: Relay, *, name: str, stop_within: float) -> AsyncIterator[None]:
    """Run `relay` in a task while the block lasts; on exit stop it within `stop_within`
    seconds (a round cut short keeps its rows leased: they are delivered again later)."""
    task = asyncio.create_task(relay.run(), name=name)
    try:
        yield
    finally:
        relay.stop()
        grace = stop_within / 2
        await asyncio.wait({task}, timeout=grace)  # the round in progress may finish
        task.cancel()
        try:
            async with asyncio.timeout(stop_within - grace):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        except TimeoutError:
            log.error(f"{relay.name}_did_not_stop", within_s=stop_within)
