"""Password hashing yields the CPU to the event loop: its threads run at a lower priority
(Linux nice values are per thread), so requests keep their latency during a login storm."""

from __future__ import annotations

import os
import threading

from argon2 import PasswordHasher

from lib.auth.passwords import HASHING_NICENESS, BoundedHasher


def niceness_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


async def test_hashing_threads_run_below_the_event_loop() -> None:
    hasher = BoundedHasher(
        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1), workers=1, queue=0
    )
    try:
        loop_niceness = niceness_of_this_thread()
        hashed = await hasher.hash("correct horse")
        assert await hasher.verify(hashed, "correct horse")
        worker_niceness = await hasher._run(lambda *_: niceness_of_this_thread(), "")
        assert worker_niceness == HASHING_NICENESS > loop_niceness
        assert niceness_of_this_thread() == loop_niceness  # the loop's own thread untouched
    finally:
        hasher.close()
