"""The operations commands added since the commands' locks (tools/local/locks.py) hold one too:
while a copy holds it, a second `make backup`, `make failover-drill` or `tools.ha.ha_tier up`
refuses at once (LOCK_WAIT=0) with one line naming the lock, before it touches a server
or writes a ledger."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.local.locks import LOCKS, file_lock

ROOT = Path(__file__).resolve().parents[2]
# a refused copy only imports and tries the lock: well under this on a loaded machine
REFUSAL_BOUND = 60.0


def second_copy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env={**os.environ, "LOCK_WAIT": "0"},
        capture_output=True,
        text=True,
        timeout=REFUSAL_BOUND,
        check=False,
    )


@pytest.mark.parametrize(
    ("lock", "command"),
    [("backup", ("tools.backups.backup",)), ("failover-drill", ("tools.drills.failover_drill",))],
)
def test_a_second_copy_refuses_while_the_lock_is_held(lock: str, command: tuple[str, ...]) -> None:
    with file_lock(lock, wait=0):
        done = second_copy(*command)
    assert done.returncode == 2, done.stderr
    assert f"var/locks/{lock}.lock" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert LOCKS.exists()


def test_the_ha_tier_refuses_a_second_up_and_starts_nothing(tmp_path: Path) -> None:
    with file_lock("ha-tier", wait=0, folder=tmp_path / "locks"):
        done = second_copy("tools.ha.ha_tier", "up", "--var", str(tmp_path), "--free-ports")
    assert done.returncode == 2, done.stderr
    assert "ha-tier.lock" in done.stderr
    assert not (tmp_path / "ha").exists()
