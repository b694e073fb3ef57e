"""The outbox relays stop when cancelled, even when a wake-up lands at the same moment.

On Python 3.11 `asyncio.wait_for` returns the inner result and swallows the cancel when
both arrive together; a relay waiting that way ignored the stop of its app and the
shutdown (and a test's teardown) waited forever. Each round here wakes the relay and
cancels it a few loop steps apart, covering the moments the race can fall on.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from lib.relay import Relay, Round, running
from services.orders.relay import OutboxRelay
from services.users.mail_relay import MailRelay

STOP_WITHIN = 2.0  # s: a stop takes one loop step; the margin is for a loaded machine


class IdleMailRelay(MailRelay):
    async def run_once(self) -> Round:  # nothing due: go straight back to waiting
        await asyncio.sleep(0)
        return Round(0, 0)


class IdleOutboxRelay(OutboxRelay):
    async def run_once(self) -> Round:
        await asyncio.sleep(0)
        return Round(0, 0)


def relays() -> list[Any]:
    options = {"interval": 0.001, "retry_max": 1.0}
    return [
        IdleMailRelay(None, None, send_timeout=1.0, service="users", **options),  # type: ignore[arg-type]
        IdleOutboxRelay(None, None, call_timeout=1.0, **options),  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize("relay", relays(), ids=["mail", "outbox"])
async def test_a_relay_stops_when_cancelled_whatever_the_timing(relay: Any) -> None:
    for steps_between in range(6):
        for _ in range(40):
            task = asyncio.create_task(relay.run())
            for _ in range(3):
                await asyncio.sleep(0)
            relay.wake()
            for _ in range(steps_between):
                await asyncio.sleep(0)
            task.cancel()
            async with asyncio.timeout(STOP_WITHIN):
                with pytest.raises(asyncio.CancelledError):
                    await task


class SwallowingRelay(Relay):
    """A round whose I/O swallows the cancel, as a 3.11 `wait_for` under a driver can."""

    name = "swallowing"

    def __init__(self) -> None:
        super().__init__(interval=0.001, retry_max=1.0, batch=10)
        self.in_round = asyncio.Event()
        self.swallowed = False
        self.finished = False

    async def run(self) -> None:
        await super().run()
        self.finished = True  # the loop left by itself, not cut

    async def run_once(self) -> Round:
        self.in_round.set()
        if not self.swallowed:
            self.swallowed = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)  # cut by the cancel, which is then lost
        await asyncio.sleep(0)
        return Round(0, 0)


async def test_running_stops_a_relay_even_when_its_cancel_is_swallowed() -> None:
    relay = SwallowingRelay()
    async with asyncio.timeout(STOP_WITHIN):
        async with running(relay, name="swallowing", stop_within=STOP_WITHIN):
            await relay.in_round.wait()  # exit while a round is in progress
    assert relay.finished


class MidRoundRelay(Relay):
    """A round that has delivered a row and is about to mark it when the stop comes."""

    name = "mid_round"

    def __init__(self) -> None:
        super().__init__(interval=0.001, retry_max=1.0, batch=10)
        self.delivered = asyncio.Event()
        self.may_mark = asyncio.Event()
        self.marked = False

    async def run_once(self) -> Round:
        self.delivered.set()
        await self.may_mark.wait()  # the marking's database round trip
        self.marked = True
        return Round(1, 1)


async def test_running_lets_the_round_in_progress_finish_before_cancelling() -> None:
    relay = MidRoundRelay()
    async with asyncio.timeout(STOP_WITHIN):
        async with running(relay, name="mid_round", stop_within=STOP_WITHIN):
            await relay.delivered.wait()
            # the mark lands just after the stop began: still in the grace, so kept
            asyncio.get_running_loop().call_soon(relay.may_mark.set)
    assert relay.marked  # not cut: the next process will not deliver the row again
