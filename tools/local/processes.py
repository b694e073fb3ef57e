"""Stopping the processes we start, and whether they live: one signal, SIGKILL past
STOP_TIMEOUT, a process group or a whole session (a member's tini runs Patroni in a second
group). Standard library only: tools/local/local_servers.py runs before .venv exists."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

from tools.time_scale import scaled

# a 2-core machine at load 3, times FIXUP_TIME_SCALE
STOP_TIMEOUT = scaled(30.0)


def stop_pid(pid: int, sig: signal.Signals = signal.SIGTERM, *, group: bool = False) -> None:
    """`sig` to `pid` (`group`: to the process group it leads), SIGKILL past STOP_TIMEOUT
    (`group`: to every group of the session it leads, as a member's tini runs Patroni in a
    second one); returns once it (`group`: its whole session) has exited. A member's first
    signal goes to its tini's group only: tini passes it on to Patroni, which stops its
    PostgreSQL in order."""
    _send(pid, sig, group)
    deadline = time.monotonic() + STOP_TIMEOUT
    while alive(pid, group=group):
        if time.monotonic() > deadline:
            for each in session_groups(pid) if group else {pid}:
                _send(each, signal.SIGKILL, group)
            deadline = time.monotonic() + STOP_TIMEOUT
        time.sleep(0.1)


def _send(pid: int, sig: signal.Signals, group: bool) -> None:
    with suppress(ProcessLookupError):
        (os.killpg if group else os.kill)(pid, sig)


def signal_groups(groups: Iterable[int], sig: signal.Signals) -> None:
    for group in groups:
        _send(group, sig, True)


def _processes(pids: str = "[0-9]*") -> list[tuple[int, int]]:
    """(process group, session) of the processes `pids` (a /proc glob) that live: a zombie,
    one the test run's subreaper has yet to reap, does not count, though signals reach it."""
    found = []
    for stat in Path("/proc").glob(f"{pids}/stat"):
        try:  # "pid (name) state ppid pgrp session ..."
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone while we looked
        if fields[0] != "Z":
            found.append((int(fields[2]), int(fields[3])))
    return found


def alive(pid: int, *, group: bool = False) -> bool:
    """Whether `pid` (`group`: any process of the session it leads) lives; those of them
    that are our children and have exited are reaped here first."""
    with suppress(ChildProcessError):
        while os.waitpid(-pid if group else pid, os.WNOHANG)[0] != 0:
            pass
    if not group:
        return bool(_processes(str(pid)))
    return any(pid in (pgrp, session) for pgrp, session in _processes())


def session_groups(group: int) -> set[int]:
    """The process groups living in the session `group` leads."""
    return {pgrp for pgrp, session in _processes() if session == group} | {group}
