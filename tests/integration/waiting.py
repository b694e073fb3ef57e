"""Waiting for a driver's state without sleeping: yield to the event loop until it holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(check: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    """Yield to the event loop until `check()` holds (the driver's state is the event);
    fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        await asyncio.sleep(0)
