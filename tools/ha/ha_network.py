"""The HA tier's members on hosts of their own, for the drill's partition: each PostgreSQL
member in a network namespace, joined to the machine by a veth pair on one bridge, so that
one member can be cut off from everything and healed again.

    python -m tools.ha.ha_tier up --isolated   (tools/ha/ha_postgres.py starts the members here)

One /24 of 198.18.0.0/15 (RFC 2544's benchmarking range) per tier: the bridge holds .1
(etcd and HAProxy), member k .(10 + k). A cut sets the member's veth down: its packets are
dropped in silence, as over a cut cable. iproute2's `ip` as root."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from tools.local.local_servers import StartError, run

BENCHMARK_NETS = 512  # /24s in 198.18.0.0/15


@dataclass(frozen=True, slots=True)
class MemberNet:
    """The names and addresses of one tier's member hosts."""

    tag: int  # the tier's HAProxy port: unique among the tiers running at once
    members: int

    @property
    def subnet(self) -> str:
        n = self.tag % BENCHMARK_NETS
        return f"198.{18 + n // 256}.{n % 256}"

    @property
    def gateway(self) -> str:
        """The bridge's address: etcd and HAProxy as the members reach them."""
        return f"{self.subnet}.1"

    def host(self, k: int) -> str:
        return f"{self.subnet}.{10 + k}"

    @property
    def bridge(self) -> str:
        return f"fx{self.tag}br"

    def namespace(self, k: int) -> str:
        return f"fx{self.tag}pg{k}"

    def outer(self, k: int) -> str:
        """Member k's veth, the machine's end (the one a cut sets down)."""
        return f"fx{self.tag}h{k}"

    def inner(self, k: int) -> str:
        return f"fx{self.tag}n{k}"

    def run_in(self, k: int, command: list[str]) -> list[str]:
        """`command` as it runs on member k's host."""
        return ["ip", "netns", "exec", self.namespace(k), *command]


def _ip(*args: str) -> None:
    run(["ip", *args])


def create(net: MemberNet) -> None:
    """The bridge, then one namespace per member with its veth pair and address."""
    if f" {net.subnet}." in run(["ip", "-4", "addr"]):
        raise StartError(f"{net.subnet}.0/24 is already on an interface of this machine")
    _ip("link", "add", net.bridge, "type", "bridge")
    _ip("addr", "add", f"{net.gateway}/24", "dev", net.bridge)
    _ip("link", "set", net.bridge, "up")
    for k in range(net.members):
        _ip("netns", "add", net.namespace(k))
        _ip("link", "add", net.outer(k), "type", "veth", "peer", "name", net.inner(k))
        _ip("link", "set", net.inner(k), "netns", net.namespace(k))
        _ip("link", "set", net.outer(k), "master", net.bridge)
        _ip("link", "set", net.outer(k), "up")
        inside = ("-n", net.namespace(k))
        _ip(*inside, "addr", "add", f"{net.host(k)}/24", "dev", net.inner(k))
        _ip(*inside, "link", "set", net.inner(k), "up")
        _ip(*inside, "link", "set", "lo", "up")


def cut(net: MemberNet, k: int) -> None:
    """Member k cut off from everything: its link down, its packets dropped in silence."""
    _ip("link", "set", net.outer(k), "down")


def heal(net: MemberNet, k: int) -> None:
    _ip("link", "set", net.outer(k), "up")


def remove(net: MemberNet) -> None:
    """The namespaces, veths and bridge, whatever of them exists (a start that failed
    half-way); the processes in them must be gone first."""
    for k in range(net.members):
        with contextlib.suppress(StartError):
            _ip("link", "del", net.outer(k))  # its peer goes with it
        with contextlib.suppress(StartError):
            _ip("netns", "del", net.namespace(k))
    with contextlib.suppress(StartError):
        _ip("link", "del", net.bridge)
