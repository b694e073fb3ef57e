"""new-service twice at once and after a kill (tools/local/locks.py, tools/tree_transaction.py),
on a copy of the working tree: a second copy refuses in one line while the lock is held
and changes nothing; a run killed outright half-way (SIGKILL: no `except` runs) is undone
by the next run, which then does its own work whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.test_new_service import STEP_TIMEOUT, status
from tests.e2e.test_new_service import tree as tree
from tools.local.locks import file_lock
from tools.local.service_process import PROCESS_MARGIN

# what `make test svc=` selects it for (tests/selection.py): nothing,
# it scaffolds a throwaway service, none of the registry's
EXERCISES = ()

NAME = "zzqkill"


def scaffold(tree: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tools.new_service", *args],
        cwd=tree,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_new_service_refuses_while_another_run_holds_the_lock(tree: Path) -> None:
    with file_lock("new-service", folder=tree / "var" / "locks", wait=0):
        second = scaffold(tree, "new", NAME, env={"LOCK_WAIT": "0"})
        _, err = second.communicate(timeout=STEP_TIMEOUT)
    assert second.returncode == 2
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("new-service: the lock var/locks/new-service.lock is held by"), lines
    assert status(tree) == ""


def test_a_run_killed_half_way_is_undone_by_the_next_which_finishes(tree: Path) -> None:
    registry = tree / "lib" / "registry.py"
    killed = scaffold(tree, "new", NAME)
    try:
        deadline = time.monotonic() + STEP_TIMEOUT
        while f'Microservice("{NAME}"' not in registry.read_text():  # half-way: written, not
            assert killed.poll() is None, killed.communicate()  # yet regenerated
            assert time.monotonic() < deadline
            time.sleep(0.02)
        killed.send_signal(signal.SIGKILL)
        killed.wait(PROCESS_MARGIN)
    finally:
        killed.kill()
        killed.wait(PROCESS_MARGIN)
    assert (tree / "var" / "new-service.journal").exists()
    assert status(tree) != ""  # the killed run's files are there
    again = scaffold(tree, "new", NAME)
    out, err = again.communicate(timeout=10 * STEP_TIMEOUT)
    assert again.returncode == 0, out + err
    assert "new-service: a run killed half-way was undone first" in err
    assert "new-service: done." in out
    assert not (tree / "var" / "new-service.journal").exists()
    assert registry.read_text().count(f'Microservice("{NAME}"') == 1
    assert " M lib/registry.py" in status(tree).splitlines()
