"""The HA data tier as one command: `python -m tools.ha_tier up|down|status [--var var]`.

`up` starts tools/ha_postgres.py's PostgreSQL (3 etcd, 3 Patroni members in synchronous
mode, HAProxy on the primary) on `BASE_PORT`'s block of loopback ports, or on free ports
(`--free-ports`, the tests), records what it started in `var/ha/tier.json`, and prints the
DSN the services use (`<DB>_DATABASE_URL=<dsn>/fixup_<db>`). `down` stops it, HAProxy
first and etcd last. A member that cannot start, a port in use or a missing package stops
`up` with one line naming it, and whatever it had started is stopped again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

from tools.ha_postgres import MEMBERS, PORTS_NEEDED, PgLayout, layout_from, start, start_member
from tools.local_servers import StartError, listening

BASE_PORT = 7400  # make run ha=1: etcd 7400-7402 / 7403-7405, PostgreSQL 7406-7408,
# Patroni REST 7409-7411, HAProxy (the primary) 7412
LEDGER = "tier.json"
STOP_TIMEOUT = 30.0


def pick_free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def read_layout(var: Path) -> tuple[PgLayout, list[int]]:
    """The running tier's layout and process groups, from its ledger."""
    entry = json.loads((var / "ha" / LEDGER).read_text())
    return layout_from(list(entry["ports"])), list(entry["groups"])


def up(var: Path, *, free_ports: bool = False) -> PgLayout:
    root = var / "ha"
    if (root / LEDGER).exists():
        raise StartError(f"an HA tier is recorded in {root / LEDGER}: `down` it first")
    fixed = list(range(BASE_PORT, BASE_PORT + PORTS_NEEDED))
    ports = pick_free_ports(PORTS_NEEDED) if free_ports else fixed
    taken = [p for p in ports if listening("127.0.0.1", p, timeout=0.2)]
    if taken:
        raise StartError(f"port {taken[0]} is in use (the HA tier needs {ports[0]}-{ports[-1]})")
    layout = layout_from(ports)
    if free_ports:  # a drill's throwaway tier: data of an earlier one names other ports
        shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    groups: list[int] = []
    try:
        groups = start(layout, root, started=groups)
    finally:
        (root / LEDGER).write_text(json.dumps({"ports": ports, "groups": groups}))
    return layout


def _alive(group: int) -> bool:
    """Whether any process of the group lives. Its dead ones that are our children (the
    tests start the tier in-process, and reparent orphans to themselves) are reaped first:
    a zombie would keep the group alive forever."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-group, os.WNOHANG)[0] != 0:
            pass
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def stop_group(group: int, sig: signal.Signals = signal.SIGTERM) -> None:
    """Signal a process group and wait until it is gone (SIGKILL past STOP_TIMEOUT)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, sig)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(group):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            deadline = time.monotonic() + STOP_TIMEOUT
        time.sleep(0.1)


def down(var: Path) -> int:
    """Stop what `up` recorded, newest first (HAProxy, the members, etcd); -> how many."""
    ledger = var / "ha" / LEDGER
    if not ledger.exists():
        return 0
    _, groups = read_layout(var)
    for group in reversed(groups):
        stop_group(group)
    ledger.unlink()
    return len(groups)


def restart_members(var: Path) -> None:
    """Start again every Patroni member whose process group is gone (it rejoins as a
    replica, rewound by pg_rewind), and record the new groups."""
    ledger = var / "ha" / LEDGER
    entry = json.loads(ledger.read_text())
    groups: list[int] = entry["groups"]
    for k in range(MEMBERS):
        if not _alive(groups[MEMBERS + k]):
            groups[MEMBERS + k] = start_member(var / "ha", k)
    ledger.write_text(json.dumps(entry))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ha_tier", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--var", type=Path, default=Path("var"))
    parser.add_argument("--free-ports", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "down":
        print(f"ha tier: {down(args.var)} process groups stopped", file=sys.stderr)
        return 0
    if args.command == "status":
        from tools.ha_postgres import cluster_state

        layout, _ = read_layout(args.var)
        for member in cluster_state(layout):
            print(f"{member.get('name')}: {member.get('role')} {member.get('state')}")
        return 0
    try:
        layout = up(args.var, free_ports=args.free_ports)
    except StartError as exc:
        print(f"ha tier: {exc}", file=sys.stderr)
        down(args.var)
        return 1
    print(f"ha tier: PostgreSQL primary at {layout.dsn} (HAProxy), members {layout.postgres}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
