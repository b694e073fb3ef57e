"""`make run ha=1`'s refusals (tools/ha/run_ha.py), each one line naming the cause with nothing
started and nothing left running: a copy already holding the tier's lock, a tier recorded
by an earlier run (never stopped in its place: its process groups are not this run's), a
port of the tier's block in use, a missing package."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tools.ha.ha_tier import BASE_PORT, LEDGER
from tools.local.locks import file_lock

ROOT = Path(__file__).resolve().parents[2]
REFUSAL_BOUND = 60.0  # imports and a check: well under this on a loaded machine


def run_ha(
    var: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.ha.run_ha", "--var", str(var), *extra],
        cwd=ROOT,
        env={**os.environ, "LOCK_WAIT": "0", **(env or {})},
        capture_output=True,
        text=True,
        timeout=REFUSAL_BOUND,
        check=False,
    )


@pytest.fixture
def var() -> Iterator[Path]:
    """A var/ the postgres and mysql users can pass (pytest's own var is under a 0700
    /tmp/pytest-of-<user>, whose tier would live in the server root: tools/ha/ha_tier.py)."""
    with tempfile.TemporaryDirectory(prefix="fixup-run-ha-") as directory:
        Path(directory).chmod(0o755)
        yield Path(directory)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_second_copy_refuses_while_the_tier_lock_is_held(var: Path) -> None:
    with file_lock("ha-tier", wait=0, folder=var / "locks"):
        done = run_ha(var, "--free-ports")
    assert done.returncode == 2, done.stderr
    assert "ha-tier.lock" in one_line(done)
    assert not (var / "ha").exists()


def test_a_recorded_tier_is_named_and_left_alone(var: Path) -> None:
    ledger = var / "ha" / LEDGER
    ledger.parent.mkdir(parents=True)
    ledger.write_text('{"ports": [], "groups": [], "redis_ports": [], "redis_groups": []}')
    done = run_ha(var, "--free-ports")
    assert done.returncode == 1, done.stderr
    assert "tools.ha.ha_tier down" in one_line(done)
    assert ledger.exists()  # not this run's to stop


@contextmanager
def first_port_taken() -> Iterator[None]:
    """BASE_PORT held for the test; one that something else holds is just as taken."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", BASE_PORT))
        holder.listen()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
    try:
        yield
    finally:
        holder.close()


def test_a_port_of_the_block_in_use_is_named(var: Path) -> None:
    with first_port_taken():
        done = run_ha(var)
    assert done.returncode == 1, done.stderr
    assert "is in use" in one_line(done)
    assert not (var / "ha" / LEDGER).exists()


def test_a_missing_package_is_named_and_nothing_runs(var: Path) -> None:
    """etcd, patroni and haproxy out of PATH (Debian puts none of them in /usr/sbin)."""
    done = run_ha(var, "--free-ports", env={"PATH": str(Path(sys.executable).parent)})
    assert done.returncode == 1, done.stderr
    assert "apt-get install" in one_line(done)
    assert not (var / "ha" / LEDGER).exists()
