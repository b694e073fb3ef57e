"""The HA data tier as one command: `python -m tools.ha.ha_tier up|down|status [--var var]`.

`up` starts tools/ha/ha_postgres.py's PostgreSQL, tools/ha/ha_redis.py's Redis and
tools/ha/ha_mariadb.py's MariaDB pair on `BASE_PORT`'s block of loopback ports, or on free
ports (`--free-ports`), or one of them (`--only`); records what it started in
`var/ha/tier.json` and prints what the services use. `down` stops it, newest first. A
failed `up` says why in one line and leaves nothing running.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tools.backups import backup_servers
from tools.backups.backup_settings import BackupSettings
from tools.ha import ha_mariadb, ha_network, ha_redis
from tools.ha.ha_mariadb import MariaLayout, maria_layout_from
from tools.ha.ha_postgres import (
    MEMBERS,
    PORTS_NEEDED,
    PgLayout,
    cluster_state,
    layout_from,
    member_data,
    postmaster_pid,
    require_packages,
    start,
    start_member,
)
from tools.ha.ha_redis import RedisLayout, redis_layout_from, start_redis
from tools.local import ports as port_lanes
from tools.local import server_homes
from tools.local.local_servers import StartError, listening
from tools.local.locks import LockBusy, file_lock
from tools.local.processes import alive, stop_pid

BASE_PORT = 7400  # make run ha=1: PostgreSQL's 13 ports, Redis' 5, MariaDB's 5 from here
LEDGER = "tier.json"
PARTS = ("postgres", "redis", "mariadb")
TIER_USERS = ("postgres", "mysql")  # who runs its servers when we are root


@dataclass(frozen=True, slots=True)
class Tier:
    """What `up` started (None for a part left out)."""

    postgres: PgLayout | None
    redis: RedisLayout | None
    mariadb: MariaLayout | None = None


def tier_root(var: Path) -> Path:
    """var/ha/, or the checkout's server root when the tier's users cannot pass var/."""
    return server_homes.kept(var, "ha", *TIER_USERS)


def ledger(var: Path) -> dict[str, Any]:
    """What `up` recorded: each part's ports and process groups."""
    return dict(json.loads((tier_root(var) / LEDGER).read_text()))


def read_layout(var: Path) -> tuple[PgLayout, list[int]]:
    """The running PostgreSQL's layout and process groups."""
    entry = ledger(var)
    return layout_from(entry["ports"], isolated=entry["isolated"]), entry["groups"]


def read_redis(var: Path) -> tuple[RedisLayout, list[int]]:
    """The running Redis' layout and process groups (master, replica, Sentinels)."""
    entry = ledger(var)
    return redis_layout_from(entry["redis_ports"]), entry["redis_groups"]


def up(
    var: Path,
    *,
    free_ports: bool = False,
    parts: tuple[str, ...] = PARTS,
    archiving: BackupSettings | None = None,
    isolated: bool = False,
) -> Tier:
    """The tier's parts on their ports; `archiving`: PostgreSQL's WAL archived by pgBackRest
    (tools/backups/backup_servers.py); `isolated`: each PostgreSQL member on a host of its own
    (tools/ha/ha_network.py)."""
    # absolute: redis-server changes into its `dir` before it opens its relative logfile
    root = tier_root(var).resolve()
    if (root / LEDGER).exists():
        raise StartError(f"an HA tier is recorded in {root / LEDGER}: `down` it first")
    if root.parent != var.resolve():
        server_homes.server_root(var)  # the server root made 0711, and refused if not ours
    # one block: the same ports whatever runs
    count = PORTS_NEEDED + ha_redis.PORTS_NEEDED + ha_mariadb.PORTS_NEEDED
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
            require_packages()  # a missing package named before anything is written
            if tier.postgres.net is not None:
                ha_network.create(tier.postgres.net)
            extra = None
            if archiving is not None:
                backup_servers.prepare(archiving, member_data(root), list(tier.postgres.postgres))
                extra = partial(backup_servers.member_parameters, archiving)
            start(tier.postgres, root, groups, extra)
            if archiving is not None:
                backup_servers.create_stanza(archiving)
        if tier.redis is not None:
            start_redis(tier.redis, root, redis_groups)
        if tier.mariadb is not None:
            ha_mariadb.start(tier.mariadb, root / "mariadb", maria_groups)
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


def down(var: Path) -> int:
    """Stop what `up` recorded, newest first; -> how many process groups."""
    path = tier_root(var) / LEDGER
    if not path.exists():
        return 0
    entry = json.loads(path.read_text())
    groups = [*entry["groups"], *entry["redis_groups"], *entry["mariadb_groups"]]
    for group in reversed(groups):
        stop_pid(group, group=True)
    if entry["ports"]:
        stop_postmasters(tier_root(var))
        layout, _ = read_layout(var)
        if layout.net is not None:
            ha_network.remove(layout.net)
    path.unlink()
    root = tier_root(var)
    if entry["throwaway"] and root.parent != var:
        # a drill's tier in the server root: nobody else removes it (pytest does var/)
        shutil.rmtree(root, ignore_errors=True)
    return len(groups)


def stop_postmasters(root: Path) -> None:
    """Every member's postmaster still running once its Patroni is gone (Patroni starts it
    in a session of its own), by a fast shutdown (SIGINT), SIGKILL past STOP_TIMEOUT."""
    for k in range(MEMBERS):
        try:
            pid = postmaster_pid(root, k)
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue  # no pid file, or no such process: stopped
        if str(root / f"pg{k}" / "data").encode() in command:  # not a stale pid file's
            stop_pid(pid, signal.SIGINT)


def restart_members(var: Path) -> None:
    """Start again every member whose process group is gone, and record the new groups."""
    entry = ledger(var)
    groups: list[int] = entry["groups"]
    layout, _ = read_layout(var)
    for k in range(MEMBERS):
        if not alive(groups[MEMBERS + k], group=True):
            groups[MEMBERS + k] = start_member(tier_root(var), layout, k)
    (tier_root(var) / LEDGER).write_text(json.dumps(entry))


def restart_mariadb(var: Path) -> None:
    """Start again each MariaDB server of the pair whose process group is gone (it comes
    back read-only, and the watcher makes it a replica), and record the new groups."""
    entry = ledger(var)
    layout = maria_layout_from(entry["mariadb_ports"])
    groups: list[int] = entry["mariadb_groups"]
    home = (tier_root(var) / "mariadb").resolve()
    for k in range(2):
        if not alive(groups[k], group=True):
            groups[k] = ha_mariadb.start_server(layout, home, k + 1)
    (tier_root(var) / LEDGER).write_text(json.dumps(entry))


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
    entry = ledger(var)
    if entry["ports"]:
        for member in cluster_state(read_layout(var)[0]):
            print(f"{member.get('name')}: {member.get('role')} {member.get('state')}")
    if entry["redis_ports"]:
        master = ha_redis.master_address(read_redis(var)[0])
        print(
            f"redis {ha_redis.SERVICE}: master {master[0]}:{master[1]}"
            if master
            else "redis: no master"
        )
    if entry["mariadb_ports"]:
        address = maria_layout_from(entry["mariadb_ports"]).address
        print(f"mariadb: HAProxy {address} on {ha_mariadb.serving_port(address) or 'no server'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
