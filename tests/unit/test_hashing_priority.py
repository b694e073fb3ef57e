"""Password hashing yields the CPU to the event loop: its threads run at nice 10 (or under
SCHED_IDLE when asked; Linux policies and nice values are per thread), so requests keep
their latency during a login storm."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

from argon2 import PasswordHasher

from lib.auth.passwords import HASHING_NICENESS, MAX_NICENESS, BoundedHasher, Priority
from tools.time_scale import scaled


def niceness_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def policy_of_this_thread() -> int:
    return os.sched_getscheduler(0)


def bounded(priority: Priority) -> BoundedHasher:
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return BoundedHasher(cheap, workers=1, queue=0, priority=priority)


async def test_hashing_threads_run_sched_idle_when_asked() -> None:
    hasher = bounded("idle")
    try:
        hashed = await hasher.hash("correct horse")
        assert await hasher.verify(hashed, "correct horse")
        assert await hasher.bulkhead.run(lambda: policy_of_this_thread()) == os.SCHED_IDLE
        assert policy_of_this_thread() == os.SCHED_OTHER  # the loop's own thread untouched
    finally:
        hasher.close()


async def test_a_hash_finishes_while_every_core_is_busy_by_default() -> None:
    """The default (nice 10, ARGON2_PRIORITY=nice) keeps a share of a saturated host: a
    burner of normal priority on every core, and hashes still complete (ADR 0010's update
    of 2026-11-26: under SCHED_IDLE a registration waited past the gateway's timeout)."""
    hasher = BoundedHasher(
        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1), workers=1, queue=0
    )
    burners = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", "while True: pass")
        for _ in os.sched_getaffinity(0)
    ]
    try:
        worker = await hasher.bulkhead.run(lambda: niceness_of_this_thread())
        assert worker == min(MAX_NICENESS, niceness_of_this_thread() + HASHING_NICENESS)
        async with asyncio.timeout(scaled(10.0)):  # a few ms a hash when a core is free
            for _ in range(5):
                assert await hasher.verify(await hasher.hash("correct horse"), "correct horse")
    finally:
        for burner in burners:
            burner.kill()
            await burner.wait()
        hasher.close()


async def test_nice_hashing_threads_run_below_the_event_loop() -> None:
    hasher = bounded("nice")
    try:
        loop_niceness = niceness_of_this_thread()
        worker = await hasher.bulkhead.run(
            lambda: (policy_of_this_thread(), niceness_of_this_thread())
        )
        assert worker == (os.SCHED_OTHER, min(MAX_NICENESS, loop_niceness + HASHING_NICENESS))
        if loop_niceness < MAX_NICENESS:  # a loop at 19 has nothing below it
            assert loop_niceness < worker[1]
        assert niceness_of_this_thread() == loop_niceness
    finally:
        hasher.close()
