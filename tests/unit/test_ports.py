"""tools/local/ports.py: a server's port never comes from the range client sockets are drawn
from, parallel workers draw from lanes that do not meet, and the processes of one lane
never pick the same port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tools.local import ports


def test_ports_lie_under_the_ephemeral_range_in_this_process_lane() -> None:
    got = ports.free_ports(20)
    assert len(set(got)) == 20
    assert all(port in ports.lane() for port in got)
    assert max(got) < ports.ephemeral_start()


def test_lanes_do_not_meet(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[range] = []
    for index in range(ports.LANES):
        monkeypatch.setenv(ports.LANE_VARIABLE, str(index))
        seen.append(ports.lane())
    for index, one in enumerate(seen):
        assert len(one) > 1000
        for other in seen[index + 1 :]:
            assert not set(one) & set(other)
    assert seen[-1].stop <= ports.ephemeral_start()


def _taken_by_a_command(count: int) -> list[int]:
    code = f"from tools.local import ports; print(*ports.free_ports({count}))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=os.environ, capture_output=True, text=True, check=True
    ).stdout
    return [int(port) for port in out.split()]


def test_a_command_a_test_starts_walks_the_same_lane_after_it() -> None:
    """A test picks its services' ports, then starts a command (tools/ha/run_ha) that picks
    the tier's: none of them meet, and all lie in the test's lane."""
    mine = ports.free_ports(10)
    theirs = _taken_by_a_command(10)
    assert not set(mine) & set(theirs)
    assert all(port in ports.lane() for port in theirs)
    assert not set(mine + theirs) & set(ports.free_ports(10))


def _cold(size: int) -> range:
    """`size` ports of this lane half a lane ahead of where its walkers stand (the lane's
    ledger): the last to be handed out again, so no server or TIME_WAIT socket of this run,
    nor of another run walking the same lane (a copy's suite started by a test), holds
    them. The lane's first ports, where every walk starts and wraps, often are held."""
    lane = ports.lane()
    ledger = ports.ledger_of(lane)
    at = ports.walk_start(lane, ledger.read_text() if ledger.exists() else "")
    start = min(lane[(at + len(lane) // 2) % len(lane)], lane.stop - size)
    return range(start, start + size)


def test_a_port_in_use_is_passed_over_and_a_full_span_says_so(tmp_path: Path) -> None:
    span = _cold(40)
    ledger = tmp_path / "ledger"
    holders: list[socket.socket] = []
    try:
        for port in span:  # hold every port of the span but the last free one
            holder = socket.socket()
            try:
                holder.bind(("127.0.0.1", port))
            except OSError:
                holder.close()
                continue
            holders.append(holder)
        last = holders.pop()
        kept = last.getsockname()[1]
        last.close()
        assert ports.take(span, 1, ledger) == [kept]
        assert ledger.read_text() == str(kept)
        with pytest.raises(OSError, match="fewer than 2 free ports"):
            ports.take(span, 2, ledger)
    finally:
        for holder in holders:
            holder.close()


def test_the_walk_goes_round_its_span_from_where_the_ledger_stopped(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    span = _cold(5)
    ledger.write_text(str(span[3]))
    got = ports.take(span, 3, ledger)
    assert got == [span[4], span[0], span[1]]  # after the ledger's port, round to the start
    assert ledger.read_text() == str(got[-1])
