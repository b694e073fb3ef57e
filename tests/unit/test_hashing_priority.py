"""Password hashing yields the CPU to the event loop: its threads run under SCHED_IDLE (or
nice 10 when asked; Linux policies and nice values are per thread), so requests keep
their latency during a login storm."""

from __future__ import annotations

import os
import threading

from argon2 import PasswordHasher

from lib.auth.passwords import HASHING_NICENESS, BoundedHasher, Priority


def niceness_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def policy_of_this_thread() -> int:
    return os.sched_getscheduler(0)


def bounded(priority: Priority) -> BoundedHasher:
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return BoundedHasher(cheap, workers=1, queue=0, priority=priority)


async def test_hashing_threads_run_sched_idle_by_default() -> None:
    hasher = BoundedHasher(
        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1), workers=1, queue=0
    )  # the users service's default too (ARGON2_PRIORITY=idle)
    try:
        hashed = await hasher.hash("correct horse")
        assert await hasher.verify(hashed, "correct horse")
        assert await hasher._run(lambda *_: policy_of_this_thread(), "") == os.SCHED_IDLE
        assert policy_of_this_thread() == os.SCHED_OTHER  # the loop's own thread untouched
    finally:
        hasher.close()


async def test_nice_hashing_threads_run_below_the_event_loop() -> None:
    hasher = bounded("nice")
    try:
        loop_niceness = niceness_of_this_thread()
        worker = await hasher._run(
            lambda *_: (policy_of_this_thread(), niceness_of_this_thread()), ""
        )
        assert worker == (os.SCHED_OTHER, HASHING_NICENESS)
        assert loop_niceness < HASHING_NICENESS
        assert niceness_of_this_thread() == loop_niceness
    finally:
        hasher.close()
