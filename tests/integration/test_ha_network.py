"""tools/ha/ha_network.py on this machine's kernel: a member host in a network namespace is
reached through the bridge, a cut drops what crosses its link in silence (an open
connection hangs, as over a cut cable), a heal brings the same connection back, and
removing the network leaves no namespace, veth or bridge behind."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tools.ha import ha_network
from tools.ha.ha_network import MemberNet
from tools.local.local_servers import StartError
from tools.local.ports import free_port

ECHO = """
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
conn, _ = server.accept()
while data := conn.recv(64):
    conn.sendall(data)
"""
BOUND = 2.0  # s: a loopback-fast answer, or none at all


def _ip_lines(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def net() -> Iterator[MemberNet]:
    made = MemberNet(free_port(), 1)  # a port of this worker's lane: no other test's tag
    ha_network.create(made)
    try:
        yield made
    finally:
        ha_network.remove(made)


def test_a_member_host_is_reached_cut_off_in_silence_and_healed(net: MemberNet) -> None:
    port = free_port()
    command = net.run_in(0, [sys.executable, "-c", ECHO, net.host(0), str(port)])
    echo = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert echo.stdout is not None
        assert echo.stdout.readline().strip() == "listening"
        with socket.create_connection((net.host(0), port), timeout=BOUND) as conn:
            conn.sendall(b"before")
            assert conn.recv(64) == b"before"
            ha_network.cut(net, 0)
            conn.sendall(b"during")
            with pytest.raises(TimeoutError):  # no answer and no reset: a silent cut
                conn.recv(64)
            ha_network.heal(net, 0)
            conn.settimeout(None)  # TCP retransmits what was sent during the cut
            assert conn.recv(64) == b"during"
    finally:
        echo.kill()
        echo.wait()


def test_removing_the_network_leaves_nothing(net: MemberNet) -> None:
    assert net.namespace(0) in _ip_lines("netns", "list")
    ha_network.remove(net)
    assert net.namespace(0) not in _ip_lines("netns", "list")
    links = _ip_lines("link")
    assert net.bridge not in links
    assert net.outer(0) not in links


def test_a_subnet_already_on_this_machine_is_refused(net: MemberNet) -> None:
    with pytest.raises(StartError, match=rf"{net.subnet}\.0/24 is already"):
        ha_network.create(MemberNet(net.tag, 1))
