"""The HA data tier as one command: `python -m tools.ha.ha_tier up|down|status [--var var]`.

`up` starts tools/ha/ha_postgres.py's PostgreSQL (3 etcd, 3 Patroni members in synchronous
mode, HAProxy on the primary), tools/ha/ha_redis.py's Redis (a master, a replica, 3
Sentinels) and tools/ha/ha_mariadb.py's MariaDB pair (points: a primary and its semi-sync GTID
replica behind HAProxy, a watcher that fails it over) on `BASE_PORT`'s block of loopback
ports, or on free ports (`--free-ports`, the tests), or one of them (`--only
postgres|redis|mariadb`); records what it started in `var/ha/tier.json`, and prints what
the services use (`<DB>_DATABASE_URL=<dsn>/fixup_<db>`, `REDIS_SENTINELS`). `down` stops
it, MariaDB and the Sentinels first, HAProxy next and etcd last. A member that cannot
start, a port in use or a missing package stops `up` with one line naming it, and
whatever it had started is stopped again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tools.backups import ha_backups
from tools.backups.backup_settings import BackupSettings
from tools.ha import ha_mariadb, ha_network, ha_redis
from tools.ha.ha_mariadb import MariaLayout, maria_layout_from
from tools.ha.ha_postgres import (
    MEMBERS,
    PORTS_NEEDED,
    PgLayout,
    layout_from,
    member_data,
    postmaster_pid,
    server_binaries,
    start,
    start_member,
)
from tools.ha.ha_redis import RedisLayout, redis_layout_from, start_redis
from tools.local import ports as port_lanes
from tools.local import server_homes
from tools.local.local_servers import StartError, listening
from tools.local.locks import LockBusy, file_lock
from tools.time_scale import scaled

BASE_PORT = 7400  # make run ha=1: etcd 7400-7402 / 7403-7405, PostgreSQL 7406-7408,
# Patroni REST 7409-7411, HAProxy (the primary) 7412; Redis 7413-7414, Sentinels 7415-7417;
# MariaDB primary 7418, its replica 7419, HAProxy (the primary) 7420, the watcher's checks
# 7421-7422
MARIADB_PORTS = ha_mariadb.PORTS_NEEDED
LEDGER = "tier.json"
STOP_TIMEOUT = scaled(30.0)  # 30 s at load 3, times FIXUP_TIME_SCALE
PARTS = ("postgres", "redis", "mariadb")
TIER_USERS = ("postgres", "mysql")  # who runs its servers when we are root


@dataclass(frozen=True, slots=True)
class Tier:
    """What `up` started: the PostgreSQL, Redis and MariaDB layouts (None for a part left
    out)."""

    postgres: PgLayout | None
    redis: RedisLayout | None
    mariadb: MariaLayout | None = None


def tier_root(var: Path) -> Path:
    """var/ha/, or the checkout's server root when the tier's users (postgres runs Patroni
    and its members, mysql the MariaDB pair) cannot pass var/: the same place for `up`,
    `status`, the drills and `down`."""
    return server_homes.kept(var, "ha", *TIER_USERS)


def read_layout(var: Path) -> tuple[PgLayout, list[int]]:
    """The running PostgreSQL's layout and process groups, from the tier's ledger."""
    entry = json.loads((tier_root(var) / LEDGER).read_text())
    layout = layout_from(list(entry["ports"]), isolated=bool(entry.get("isolated")))
    return layout, list(entry["groups"])


def read_mariadb(var: Path) -> MariaLayout | None:
    """The running MariaDB pair's layout, if the tier has one."""
    ports = json.loads((tier_root(var) / LEDGER).read_text()).get("mariadb_ports")
    return maria_layout_from(ports) if ports else None


def read_redis(var: Path) -> tuple[RedisLayout, list[int]]:
    """The running Redis' layout and process groups (master, replica, Sentinels)."""
    entry = json.loads((tier_root(var) / LEDGER).read_text())
    return redis_layout_from(list(entry["redis_ports"])), list(entry["redis_groups"])


def up(
    var: Path,
    *,
    free_ports: bool = False,
    parts: tuple[str, ...] = PARTS,
    archiving: BackupSettings | None = None,
    isolated: bool = False,
) -> Tier:
    """The tier's parts on their ports; `archiving`: PostgreSQL's WAL archived by pgBackRest
    into those settings' repository (tools/backups/ha_backups.py), the stanza created; `isolated`:
    each PostgreSQL member on a host of its own (tools/ha/ha_network.py: the drill's
    partition)."""
    # absolute: redis-server changes into its `dir` before it opens its relative logfile
    root = tier_root(var).resolve()
    if (root / LEDGER).exists():
        raise StartError(f"an HA tier is recorded in {root / LEDGER}: `down` it first")
    if root.parent != var.resolve():
        server_homes.server_root(var)  # the server root made 0711, and refused if not ours
    # one block: the same ports whatever runs
    count = PORTS_NEEDED + ha_redis.PORTS_NEEDED + MARIADB_PORTS
    ports = (
        port_lanes.free_ports(count) if free_ports else list(range(BASE_PORT, BASE_PORT + count))
    )
    redis_end = PORTS_NEEDED + ha_redis.PORTS_NEEDED
    pg_ports = ports[:PORTS_NEEDED] if "postgres" in parts else []
    redis_ports = ports[PORTS_NEEDED:redis_end] if "redis" in parts else []
    maria_ports = ports[redis_end:] if "mariadb" in parts else []
    wanted = pg_ports + redis_ports + maria_ports
    taken = [p for p in wanted if listening("127.0.0.1", p, timeout=0.2)]
    if taken:
        raise StartError(f"port {taken[0]} is in use (the HA tier needs {ports[0]}-{ports[-1]})")
    tier = Tier(
        postgres=layout_from(pg_ports, isolated=isolated) if pg_ports else None,
        redis=redis_layout_from(redis_ports) if redis_ports else None,
        mariadb=maria_layout_from(maria_ports) if maria_ports else None,
    )
    if free_ports:  # a drill's throwaway tier: data of an earlier one names other ports
        shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    groups: list[int] = []
    redis_groups: list[int] = []
    maria_groups: list[int] = []
    try:
        if tier.postgres is not None:
            server_binaries()  # a missing package named before anything is written
            if tier.postgres.net is not None:
                ha_network.create(tier.postgres.net)
            if archiving is not None:
                ha_backups.prepare(archiving, member_data(root), list(tier.postgres.postgres))
            settings = archiving
            start(
                tier.postgres,
                root,
                started=groups,
                extra=None
                if settings is None
                else lambda data: ha_backups.member_parameters(settings, data),
            )
            if settings is not None:
                ha_backups.create_stanza(settings)
        if tier.redis is not None:
            start_redis(tier.redis, root, started=redis_groups)
        if tier.mariadb is not None:
            ha_mariadb.start(tier.mariadb, root / "mariadb", started=maria_groups)
    finally:
        entry = {
            "ports": pg_ports,
            "groups": groups,
            "redis_ports": redis_ports,
            "redis_groups": redis_groups,
            "mariadb_ports": maria_ports,
            "mariadb_groups": maria_groups,
            "archived": archiving is not None,
            "isolated": tier.postgres is not None and tier.postgres.net is not None,
            "throwaway": free_ports,
        }
        (root / LEDGER).write_text(json.dumps(entry))
    return tier


def _live_processes() -> list[tuple[int, int]]:
    """(process group, session) of every process that is no zombie, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone while we looked
        if fields[0] != "Z":
            found.append((int(fields[2]), int(fields[3])))
    return found


def session_groups(group: int) -> set[int]:
    """The process groups living in the session `group` leads: everything here starts in a
    session of its own (its leader's pid names the session and its first group), and a
    member's tini runs Patroni in a second group of the same session."""
    return {pgrp for pgrp, session in _live_processes() if session == group} | {group}


def group_alive(group: int) -> bool:
    """Whether any process of the group's session lives (a zombie does not count). Its dead
    ones that are our children are reaped first; an orphan whose parent is a subreaper (the
    test suite) stays a zombie until that one reaps it, and signals still reach it, so the
    session is judged from /proc, not by `killpg(group, 0)`."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-group, os.WNOHANG)[0] != 0:
            pass
    return any(group in (pgrp, session) for pgrp, session in _live_processes())


def signal_group(group: int, sig: signal.Signals) -> None:
    """`sig` to every process group of the session `group` leads."""
    for each in session_groups(group):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(each, sig)


def stop_group(group: int, sig: signal.Signals = signal.SIGTERM) -> None:
    """Signal a process group (its session's groups past STOP_TIMEOUT, with SIGKILL) and
    wait until the session is gone. The first signal goes to the leader's group only: a
    member's tini passes it on to Patroni, which stops its PostgreSQL in order."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, sig)
    deadline = time.monotonic() + STOP_TIMEOUT
    while group_alive(group):
        if time.monotonic() > deadline:
            signal_group(group, signal.SIGKILL)
            deadline = time.monotonic() + STOP_TIMEOUT
        time.sleep(0.1)


def down(var: Path) -> int:
    """Stop what `up` recorded, newest first (MariaDB's pair, the Sentinels, the Redis
    servers, HAProxy, the members, etcd); -> how many process groups."""
    ledger = tier_root(var) / LEDGER
    if not ledger.exists():
        return 0
    entry = json.loads(ledger.read_text())
    groups = [*entry["groups"], *entry.get("redis_groups", []), *entry.get("mariadb_groups", [])]
    for group in reversed(groups):
        stop_group(group)
    if entry["ports"]:
        stop_postmasters(tier_root(var))
        layout, _ = read_layout(var)
        if layout.net is not None:
            ha_network.remove(layout.net)
    ledger.unlink()
    root = tier_root(var)
    if entry.get("throwaway") and root.parent != var:
        # a drill's tier in the server root: nobody else removes it (pytest does var/)
        shutil.rmtree(root, ignore_errors=True)
    return len(groups)


def _running(pid: int) -> bool:
    """Whether `pid` lives and is no zombie: under a subreaper (the test suite) an orphaned
    postmaster's parent is the subreaper, which reaps it when it sees fit, not this one."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # ours: reaped here
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop_postmasters(root: Path) -> None:
    """Every member's postmaster still running once its Patroni is gone: Patroni starts it
    in a session of its own (setsid), so the member's process group does not hold it, and
    a Patroni stopped before it shut its replica down leaves the postmaster behind. A fast
    shutdown (SIGINT), SIGKILL past STOP_TIMEOUT."""
    for k in range(MEMBERS):
        try:
            pid = postmaster_pid(root, k)
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue  # no pid file, or no such process: stopped
        if str(root / f"pg{k}" / "data").encode() not in command:
            continue  # a stale pid file whose number another process has now
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _running(pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)


def restart_members(var: Path) -> None:
    """Start again every Patroni member whose process group is gone (it rejoins as a
    replica, rewound by pg_rewind), and record the new groups."""
    ledger = tier_root(var) / LEDGER
    entry = json.loads(ledger.read_text())
    groups: list[int] = entry["groups"]
    layout, _ = read_layout(var)
    for k in range(MEMBERS):
        if not group_alive(groups[MEMBERS + k]):
            groups[MEMBERS + k] = start_member(tier_root(var), layout, k)
    ledger.write_text(json.dumps(entry))


def restart_mariadb(var: Path) -> list[int]:
    """Start again each MariaDB server of the pair whose process group is gone: it comes
    back read-only and the watcher makes it a replica of the primary it chose (ADR 0039);
    the new groups recorded. -> the ports started."""
    ledger = tier_root(var) / LEDGER
    entry = json.loads(ledger.read_text())
    layout = maria_layout_from(list(entry["mariadb_ports"]))
    groups: list[int] = entry["mariadb_groups"]
    started = []
    for k, port in enumerate(layout.servers):
        if not group_alive(groups[k]):
            home = (tier_root(var) / "mariadb").resolve()
            groups[k] = ha_mariadb.start_server(layout, home, k + 1)
            started.append(port)
    ledger.write_text(json.dumps(entry))
    return started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ha.ha_tier", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--var", type=Path, default=Path("var"))
    parser.add_argument("--free-ports", action="store_true")
    parser.add_argument("--only", choices=PARTS, help="start one part of the tier")
    parser.add_argument(
        "--isolated", action="store_true", help="each PostgreSQL member on a host of its own"
    )
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
        parts = (args.only,) if args.only else PARTS
        tier = up(args.var, free_ports=args.free_ports, parts=parts, isolated=args.isolated)
    except StartError as exc:
        print(f"ha tier: {exc}", file=sys.stderr)
        down(args.var)
        return 1
    if tier.postgres is not None:
        print(f"ha tier: PostgreSQL primary at {tier.postgres.dsn} (HAProxy), members", end=" ")
        print(tier.postgres.postgres)
    if tier.redis is not None:
        print(f"ha tier: Redis through Sentinel: REDIS_SENTINELS={tier.redis.sentinels_setting}")
    if tier.mariadb is not None:
        print(
            f"ha tier: MariaDB primary at 127.0.0.1:{tier.mariadb.address} (HAProxy),"
            f" servers {tier.mariadb.servers}"
        )
    return 0


def status(var: Path) -> int:
    entry = json.loads((tier_root(var) / LEDGER).read_text())
    if entry["ports"]:
        from tools.ha.ha_postgres import cluster_state

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
    maria = read_mariadb(var)
    if maria is not None and maria.address:
        port = ha_mariadb.serving_port(maria.address)
        print(f"mariadb: HAProxy {maria.address} on {port or 'no server'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
