"""tools/ports.py: a server's port never comes from the range client sockets are drawn
from, and parallel workers draw from lanes that do not meet."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tools import ports


def test_ports_lie_under_the_ephemeral_range_in_this_process_lane() -> None:
    got = ports.free_ports(20)
    assert len(set(got)) == 20
    assert all(port in ports.lane() for port in got)
    assert max(got) < ports.ephemeral_start()


def test_one_process_never_hands_a_port_out_twice_before_its_lane_wraps() -> None:
    first = ports.free_ports(50)
    later = [ports.free_port() for _ in range(50)]
    assert not set(first) & set(later)


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


def test_a_port_in_use_is_passed_over_and_a_full_span_says_so() -> None:
    span = ports.lane()[:40]
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
        walk = ports.PortWalk(span)
        assert walk.take(1) == [kept]
        with pytest.raises(OSError, match="fewer than 2 free ports"):
            walk.take(2)
    finally:
        for holder in holders:
            holder.close()


def test_a_forked_child_walks_its_own_way() -> None:
    """A forked child (mutmut's sessions are forks) must not repeat its parent's ports."""
    ports.free_port()  # the parent's walk exists before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ports to the parent, then gone
        os.write(write, ",".join(map(str, ports.free_ports(20))).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = {int(p) for p in pipe.read().split(",")}
    os.waitpid(pid, 0)
    assert len(child) == 20
    assert len(child & set(ports.free_ports(20))) < 20


def test_the_lane_comes_from_the_environment_of_a_command() -> None:
    """A command a test starts (tools/ha_tier.py, a benchmark) inherits the worker's lane."""
    code = "from tools import ports; print(ports.lane().start, ports.free_port())"
    env = {**os.environ, ports.LANE_VARIABLE: "3"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    start, port = int(out[0]), int(out[1])
    size = (ports.ephemeral_start() - ports.LOWEST) // ports.LANES
    assert start == ports.LOWEST + 3 * size
    assert start <= port < start + size
