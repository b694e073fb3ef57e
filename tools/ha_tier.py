"""The HA data tier as one command: `python -m tools.ha_tier up|down|status [--var var]`.

`up` starts tools/ha_postgres.py's PostgreSQL (3 etcd, 3 Patroni members in synchronous
mode, HAProxy on the primary) and tools/ha_redis.py's Redis (a master, a replica, 3
Sentinels) on `BASE_PORT`'s block of loopback ports, or on free ports (`--free-ports`, the
tests), or one of them (`--only postgres|redis`); records what it started in
`var/ha/tier.json`, and prints what the services use (`<DB>_DATABASE_URL=<dsn>/fixup_<db>`,
`REDIS_SENTINELS`). `down` stops it, the Sentinels first, HAProxy next and etcd last. A
member that cannot start, a port in use or a missing package stops `up` with one line
naming it, and whatever it had started is stopped again.
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
from dataclasses import dataclass
from pathlib import Path

from tools import ha_redis
from tools.ha_postgres import MEMBERS, PORTS_NEEDED, PgLayout, layout_from, start, start_member
from tools.ha_redis import RedisLayout, redis_layout_from, start_redis
from tools.local_servers import StartError, listening
from tools.locks import LockBusy, file_lock

BASE_PORT = 7400  # make run ha=1: etcd 7400-7402 / 7403-7405, PostgreSQL 7406-7408,
# Patroni REST 7409-7411, HAProxy (the primary) 7412; Redis 7413-7414, Sentinels 7415-7417
LEDGER = "tier.json"
STOP_TIMEOUT = 30.0
PARTS = ("postgres", "redis")


@dataclass(frozen=True, slots=True)
class Tier:
    """What `up` started: the PostgreSQL and the Redis layouts (None for a part left out)."""

    postgres: PgLayout | None
    redis: RedisLayout | None


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
    """The running PostgreSQL's layout and process groups, from the tier's ledger."""
    entry = json.loads((var / "ha" / LEDGER).read_text())
    return layout_from(list(entry["ports"])), list(entry["groups"])


def read_redis(var: Path) -> tuple[RedisLayout, list[int]]:
    """The running Redis' layout and process groups (master, replica, Sentinels)."""
    entry = json.loads((var / "ha" / LEDGER).read_text())
    return redis_layout_from(list(entry["redis_ports"])), list(entry["redis_groups"])


def up(var: Path, *, free_ports: bool = False, parts: tuple[str, ...] = PARTS) -> Tier:
    root = var / "ha"
    if (root / LEDGER).exists():
        raise StartError(f"an HA tier is recorded in {root / LEDGER}: `down` it first")
    count = PORTS_NEEDED + ha_redis.PORTS_NEEDED  # one block: the same ports whatever runs
    ports = pick_free_ports(count) if free_ports else list(range(BASE_PORT, BASE_PORT + count))
    pg_ports = ports[:PORTS_NEEDED] if "postgres" in parts else []
    redis_ports = ports[PORTS_NEEDED:] if "redis" in parts else []
    taken = [p for p in pg_ports + redis_ports if listening("127.0.0.1", p, timeout=0.2)]
    if taken:
        raise StartError(f"port {taken[0]} is in use (the HA tier needs {ports[0]}-{ports[-1]})")
    tier = Tier(
        postgres=layout_from(pg_ports) if pg_ports else None,
        redis=redis_layout_from(redis_ports) if redis_ports else None,
    )
    if free_ports:  # a drill's throwaway tier: data of an earlier one names other ports
        shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    groups: list[int] = []
    redis_groups: list[int] = []
    try:
        if tier.postgres is not None:
            start(tier.postgres, root, started=groups)
        if tier.redis is not None:
            start_redis(tier.redis, root, started=redis_groups)
    finally:
        entry = {
            "ports": pg_ports,
            "groups": groups,
            "redis_ports": redis_ports,
            "redis_groups": redis_groups,
        }
        (root / LEDGER).write_text(json.dumps(entry))
    return tier


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
    """Stop what `up` recorded, newest first (the Sentinels, the Redis servers, HAProxy, the
    members, etcd); -> how many process groups."""
    ledger = var / "ha" / LEDGER
    if not ledger.exists():
        return 0
    entry = json.loads(ledger.read_text())
    groups = [*entry["groups"], *entry.get("redis_groups", [])]
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
    parser.add_argument("--only", choices=PARTS, help="start one part of the tier")
    args = parser.parse_args(argv)
    try:
        with file_lock("ha-tier", folder=args.var / "locks"):  # one up or down at a time
            return command(args)
    except LockBusy as exc:
        print(f"ha tier: {exc}", file=sys.stderr)
        return 2


def command(args: argparse.Namespace) -> int:
    if args.command == "down":
        print(f"ha tier: {down(args.var)} process groups stopped", file=sys.stderr)
        return 0
    if args.command == "status":
        return status(args.var)
    try:
        tier = up(args.var, free_ports=args.free_ports, parts=(args.only,) if args.only else PARTS)
    except StartError as exc:
        print(f"ha tier: {exc}", file=sys.stderr)
        down(args.var)
        return 1
    if tier.postgres is not None:
        print(f"ha tier: PostgreSQL primary at {tier.postgres.dsn} (HAProxy), members", end=" ")
        print(tier.postgres.postgres)
    if tier.redis is not None:
        print(f"ha tier: Redis through Sentinel: REDIS_SENTINELS={tier.redis.sentinels_setting}")
    return 0


def status(var: Path) -> int:
    entry = json.loads((var / "ha" / LEDGER).read_text())
    if entry["ports"]:
        from tools.ha_postgres import cluster_state

        layout, _ = read_layout(var)
        for member in cluster_state(layout):
            print(f"{member.get('name')}: {member.get('role')} {member.get('state')}")
    if entry.get("redis_ports"):
        redis_layout, _ = read_redis(var)
        master = ha_redis.master_address(redis_layout)
        print(
            f"redis {ha_redis.SERVICE}: master {master[0]}:{master[1]}"
            if master
            else "redis: no master"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
