"""Free loopback ports for the servers a command, a benchmark or a test starts.

Binding port 0 hands out a port of the kernel's ephemeral range, the one every outgoing
connection's local port is drawn from too: between that probe and the server's own bind,
a busy machine (the suite's parallel workers, a load run) can give the port to a client
socket or to another process's probe, and the server dies with "Address already in use".
So ports come from below that range, from a lane of their own per parallel test worker
(`FIXUP_PORT_LANE`, set by tests/conftest.py), walked from a random start and never handed
out twice by one process until its lane wraps (a forked child starts a walk of its own).
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading
from pathlib import Path

LANE_VARIABLE = "FIXUP_PORT_LANE"
LANES = 8  # lane 0: commands run by hand; 1-7: the test suite's workers
LOWEST = 10_000  # below: the well-known ports of the machine's own servers
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL_START = 32_768  # Linux's default; macOS and Windows start higher


def ephemeral_start() -> int:
    """The first port the kernel hands out to outgoing connections and `bind(0)`."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_EPHEMERAL_START


def lane() -> range:
    """This process's share of the ports under the ephemeral range."""
    start = max(ephemeral_start(), LOWEST + LANES)
    size = (start - LOWEST) // LANES
    index = int(os.environ.get(LANE_VARIABLE, "0")) % LANES
    return range(LOWEST + index * size, LOWEST + (index + 1) * size)


class PortWalk:
    """The ports of `span` from a random start, each once per turn round the span."""

    def __init__(self, span: range) -> None:
        first = random.SystemRandom().randrange(len(span))  # whatever a test seeded
        self.span = span
        self._order = itertools.cycle([*span[first:], *span[:first]])

    def take(self, count: int) -> list[int]:
        """The next `count` ports of the walk that no socket holds."""
        found: list[int] = []
        for tried, port in enumerate(self._order):
            if tried >= len(self.span):
                raise OSError(f"fewer than {count} free ports in {self.span}")
            if _bindable(port):
                found.append(port)
                if len(found) == count:
                    return found
        raise AssertionError("unreachable: the walk is endless")


def _bindable(port: int) -> bool:
    """No socket holds the port, not even one in TIME_WAIT (no SO_REUSEADDR here)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_lock = threading.Lock()
_walks: dict[tuple[int, range], PortWalk] = {}  # a fork must not repeat its parent's walk


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing on 127.0.0.1 listens on or connects from."""
    key = (os.getpid(), lane())
    with _lock:
        if key not in _walks:
            _walks[key] = PortWalk(key[1])
        return _walks[key].take(count)


def free_port() -> int:
    """One port for a server to listen on (see the module's docstring for why not 0)."""
    return free_ports(1)[0]
