"""lib/auth/passwords without a server and with cheap argon2 costs: the ARGON2_* settings,
hashing and verifying (a malformed hash is a mismatch, never an error), the bounded pool's
capacity, decoy and shutdown, and which scheduling call the hashing threads make (recorded,
so the test holds under any niceness; tests/unit/test_hashing_priority.py checks the
real effect)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher, Type

from lib.auth import passwords
from lib.auth.passwords import (
    ARGON2_DEFAULTS,
    HASHING_NICENESS,
    BoundedHasher,
    HashingBusy,
    hash_password,
    hasher,
    make_hasher,
    verify_password,
)

CHEAP = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "8", "ARGON2_PARALLELISM": "1"}


@pytest.fixture
def cheap_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in CHEAP.items():
        monkeypatch.setenv(name, value)
    hasher.cache_clear()
    yield
    hasher.cache_clear()


def test_defaults_are_the_users_services() -> None:
    assert ARGON2_DEFAULTS == {
        "ARGON2_TIME_COST": 3,
        "ARGON2_MEMORY_COST": 32768,
        "ARGON2_PARALLELISM": 1,
    }
    assert HASHING_NICENESS == 10


@pytest.mark.parametrize(
    ("raw", "value"), [(None, 3), ("", 3), ("   ", 3), ("1", 1), (" 7 ", 7), ("64", 64)]
)
def test_setting(monkeypatch: pytest.MonkeyPatch, raw: str | None, value: int) -> None:
    if raw is None:
        monkeypatch.delenv("ARGON2_TIME_COST", raising=False)
    else:
        monkeypatch.setenv("ARGON2_TIME_COST", raw)
    assert passwords._setting("ARGON2_TIME_COST") == value


@pytest.mark.parametrize("raw", ["0", "-1", "x", "1.5"])
def test_a_bad_setting_names_itself(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("ARGON2_MEMORY_COST", raw)
    with pytest.raises(ValueError, match=r"^ARGON2_MEMORY_COST must be") as caught:
        passwords._setting("ARGON2_MEMORY_COST")
    assert str(caught.value) == f"ARGON2_MEMORY_COST must be a positive integer, got {raw!r}"


def test_hasher_reads_the_environment_once(
    cheap_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = hasher()
    assert (first.time_cost, first.memory_cost, first.parallelism) == (1, 8, 1)
    assert first.type is Type.ID
    monkeypatch.setenv("ARGON2_TIME_COST", "2")
    assert hasher() is first


def test_hash_and_verify(cheap_env: None) -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert verify_password(hashed, "correct horse") is True
    assert verify_password(hashed, "wrong horse") is False
    assert hash_password("correct horse") != hashed  # salted


@pytest.mark.parametrize("bad", ["", "not a hash", "$argon2id$v=19$m=8,t=1,p=1$x$y", "é"])
def test_a_malformed_hash_is_a_mismatch(cheap_env: None, bad: str) -> None:
    assert verify_password(bad, "pw") is False


def test_make_hasher() -> None:
    made = make_hasher(2, 16, 2)
    assert (made.time_cost, made.memory_cost, made.parallelism, made.type) == (2, 16, 2, Type.ID)


# --- the thread's scheduling ---------------------------------------------------------------


@pytest.fixture
def sched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []

    def setscheduler(pid: int, policy: int, param: os.sched_param) -> None:
        calls.append(("sched", pid, policy, param.sched_priority))

    def setpriority(which: int, who: int, prio: int) -> None:
        calls.append(("nice", which, who, prio))

    monkeypatch.setattr(os, "sched_setscheduler", setscheduler)
    monkeypatch.setattr(os, "setpriority", setpriority)
    return calls


def test_idle_asks_for_sched_idle_only(sched: list[tuple[Any, ...]]) -> None:
    passwords._yield_to_the_loop("idle")
    assert sched == [("sched", 0, os.SCHED_IDLE, 0)]


def lowered(thread: int | None = None) -> tuple[Any, ...]:
    """The call that puts `thread` (else this one), started by this thread (whose niceness
    it inherits), HASHING_NICENESS steps below it."""
    inherited = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.get_native_id() if thread is None else thread
    return ("nice", os.PRIO_PROCESS, thread, min(19, inherited + HASHING_NICENESS))


def test_idle_refused_falls_back_to_nice(
    sched: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any) -> None:
        raise PermissionError("no")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    passwords._yield_to_the_loop("idle")
    assert sched == [lowered()]


def test_nice_lowers_this_thread_only(sched: list[tuple[Any, ...]]) -> None:
    passwords._yield_to_the_loop("nice")
    assert sched == [lowered()]


def test_a_platform_without_sched_idle_falls_back_to_nice(
    sched: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "sched_setscheduler")
    passwords._yield_to_the_loop("idle")
    assert sched == [lowered()]


def test_a_platform_without_setpriority_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "setpriority")
    passwords._yield_to_the_loop("nice")  # no AttributeError


def test_nice_refused_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any) -> None:
        raise PermissionError("no")

    monkeypatch.setattr(os, "setpriority", refuse)
    passwords._yield_to_the_loop("nice")  # no error


# --- BoundedHasher -------------------------------------------------------------------------


def cheap() -> PasswordHasher:
    return make_hasher(1, 8, 1)


@pytest.mark.parametrize(("workers", "queue"), [(0, 0), (1, -1), (0, 5)])
def test_bounded_needs_a_worker_and_a_queue(workers: int, queue: int) -> None:
    with pytest.raises(ValueError, match=r"^workers must be >= 1 and queue >= 0$"):
        BoundedHasher(cheap(), workers=workers, queue=queue)


async def test_bounded_hashes_and_verifies_in_named_threads() -> None:
    bounded = BoundedHasher(cheap(), workers=1, queue=0, priority="nice")
    try:
        hashed = await bounded.hash("pw")
        assert hashed.startswith("$argon2id$v=19$m=8,t=1,p=1$")
        assert await bounded.verify(hashed, "pw") is True
        assert await bounded.verify(hashed, "other") is False
        assert await bounded.verify("garbage", "pw") is False
        name = await bounded.bulkhead.run(lambda: threading.current_thread().name)
        assert name.startswith("argon2_")
        assert bounded.pending == 0
    finally:
        bounded.close()


async def test_bounded_threads_start_with_the_priority_asked(
    sched: list[tuple[Any, ...]],
) -> None:
    bounded = BoundedHasher(cheap(), workers=1, queue=0)  # the default: nice
    try:
        native = await bounded.bulkhead.run(lambda: threading.get_native_id())
    finally:
        bounded.close()
    assert sched == [lowered(native)]
    idle = BoundedHasher(cheap(), workers=1, queue=0, priority="idle")
    try:
        await idle.bulkhead.run(lambda: None)
    finally:
        idle.close()
    assert sched[1:] == [("sched", 0, os.SCHED_IDLE, 0)]


async def test_no_account_costs_a_hash_and_is_false() -> None:
    bounded = BoundedHasher(cheap(), workers=1, queue=0)
    try:
        assert await bounded.verify(None, "pw") is False
        decoy = bounded._decoy
        assert decoy is not None
        assert decoy.startswith("$argon2id$")
        assert await bounded.verify(None, "pw") is False
        assert bounded._decoy == decoy  # made once
    finally:
        bounded.close()


async def test_no_account_is_checked_against_the_decoy(monkeypatch: pytest.MonkeyPatch) -> None:
    bounded = BoundedHasher(cheap(), workers=1, queue=0)
    checked: list[tuple[str, str]] = []
    real_check = bounded._check

    def spy(hash: str, password: str) -> bool:
        checked.append((hash, password))
        return real_check(hash, password)

    monkeypatch.setattr(bounded, "_check", spy)
    try:
        assert await bounded.verify(None, "pw") is False
    finally:
        bounded.close()
    assert checked == [(bounded._decoy, "pw")]  # a real argon2 check: it costs the same


async def test_the_decoy_is_not_made_for_a_real_hash() -> None:
    bounded = BoundedHasher(cheap(), workers=1, queue=0)
    try:
        hashed = await bounded.hash("pw")
        assert await bounded.verify(hashed, "pw") is True
        assert bounded._decoy is None
    finally:
        bounded.close()


async def test_past_workers_plus_queue_is_busy_at_once() -> None:
    bounded = BoundedHasher(cheap(), workers=1, queue=1)
    release = threading.Event()
    try:
        first = asyncio.ensure_future(bounded.bulkhead.run(lambda: release.wait(5)))
        second = asyncio.ensure_future(bounded.bulkhead.run(lambda: release.wait(5)))
        await asyncio.sleep(0)
        assert bounded.pending == 2
        with pytest.raises(HashingBusy) as caught:
            await bounded.hash("pw")
        assert caught.value.detail == "too many password checks in progress"
        assert caught.value.status == 503
        assert caught.value.headers == {"Retry-After": "1"}
        release.set()
        assert await first is True
        assert await second is True
        assert bounded.pending == 0
        assert (await bounded.hash("pw")).startswith("$argon2id$")
    finally:
        release.set()
        bounded.close()


async def test_pending_goes_back_down_when_the_work_fails() -> None:
    bounded = BoundedHasher(cheap(), workers=1, queue=0)

    def boom() -> None:
        raise RuntimeError("boom")

    try:
        with pytest.raises(RuntimeError):
            await bounded.bulkhead.run(boom)
        assert bounded.pending == 0
    finally:
        bounded.close()


async def test_close_refuses_new_work_and_drops_the_queue() -> None:
    bounded = BoundedHasher(cheap(), workers=1, queue=1)
    started, release = threading.Event(), threading.Event()

    def first() -> bool:
        started.set()
        return release.wait(5)

    running = asyncio.ensure_future(bounded.bulkhead.run(first))
    queued = asyncio.ensure_future(bounded.bulkhead.run(lambda: "ran"))
    # the first job is running in the worker (one loop turn is not enough under load:
    # close() would cancel it before the thread took it)
    assert await asyncio.to_thread(started.wait, 5)
    bounded.close()  # returns at once (wait=False), cancelling what has not started
    release.set()
    assert await running is True
    with pytest.raises(asyncio.CancelledError):
        await queued
    with pytest.raises(RuntimeError):
        await bounded.hash("pw")


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 1), (3, 2), (8, 7)])
def test_default_workers_leave_a_core_to_the_event_loop(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int
) -> None:
    monkeypatch.setattr(passwords.os, "sched_getaffinity", lambda _pid: set(range(cores)))
    assert passwords.default_workers() == workers


def test_users_settings_take_the_default_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.users.settings import UsersSettings

    monkeypatch.setattr(passwords.os, "sched_getaffinity", lambda _pid: set(range(4)))
    assert UsersSettings.model_fields["argon2_workers"].get_default(call_default_factory=True) == 3
