"""Free loopback ports for the servers a command, a benchmark or a test starts.

Not port 0: a port of the kernel's ephemeral range can go to a client socket between the
probe and the server's bind. So ports come from below that range, from a lane per parallel
test worker (`FIXUP_PORT_LANE`, set by tests/conftest.py), walked in turn through one
ledger file."""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
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


def walk_start(span: range, ledger_text: str) -> int:
    """The index in `span` a walk starts from: after the port a ledger's text names, else 0."""
    last = ledger_text.strip()
    return span.index(int(last)) + 1 if last.isdigit() and int(last) in span else 0


def take(span: range, count: int, ledger: Path) -> list[int]:
    """The next `count` ports of `span` after the one `ledger` names that no socket holds;
    the ledger then names the last of them. Every process of a lane walks one ledger under
    its lock, so a test and the commands it starts never pick the same port."""
    with ledger.open("a+") as book:
        fcntl.flock(book, fcntl.LOCK_EX)  # released when closed
        book.seek(0)
        at = walk_start(span, book.read())
        found: list[int] = []
        for tried in range(len(span)):
            port = span[(at + tried) % len(span)]
            if _bindable(port):
                found.append(port)
                if len(found) == count:
                    book.truncate(0)
                    book.write(str(port))
                    return found
    raise OSError(f"fewer than {count} free ports in {span}")


def _bindable(port: int) -> bool:
    """No socket holds the port, not even one in TIME_WAIT (no SO_REUSEADDR here)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ledger_of(span: range) -> Path:
    """The ledger every process of this user walking `span` shares."""
    return Path(tempfile.gettempdir()) / f"fixup-ports-{os.getuid()}-{span.start}-{span.stop}"


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing on 127.0.0.1 listens on or connects from."""
    span = lane()
    return take(span, count, ledger_of(span))


def free_port() -> int:
    """One port for a server to listen on."""
    return free_ports(1)[0]
