"""MariaDB (points) with a semi-synchronous GTID replica, one HAProxy address that follows
the primary, and a watcher that fails over by itself (tools/ha/ha_mariadb_watch.py, ADR 0039).

    python -m tools.ha.ha_mariadb promote --port <replica>   (by hand: the watcher does it)

Every server starts read-only: one that restarts never comes back writable by itself.
"""

from __future__ import annotations

import argparse
import configparser
import string
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from tools.ha.ha_postgres import haproxy_config
from tools.local.local_servers import (
    Address,
    StartError,
    require,
    spawn,
    start_mysql,
    wait_until,
)
from tools.time_scale import scaled

# both servers' option file, ${server_id} filled in
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "mariadb" / "replication.cnf"
APPLY_TIMEOUT = 30.0  # the replica applying what it received before it is promoted
CHECK_INTER_MS = 500  # HAProxy asks each check port this often
CHECK_FALL = 2  # failed checks before a server is out (its sessions cut)
START_TIMEOUT = scaled(30.0)  # a server, the replica's link, HAProxy on the primary
PORTS_NEEDED = 5  # the servers, HAProxy, the watcher's two check ports
STATE = "primary.json"  # the watcher's choice of primary, under the pair's directory


@dataclass(frozen=True, slots=True)
class MariaLayout:
    """The pair's ports: primary, replica, and (0, () for a bare pair) HAProxy's and checks."""

    primary: int
    replica: int
    address: int = 0  # 0: no HAProxy (a bare pair)
    checks: tuple[int, ...] = ()

    @property
    def servers(self) -> tuple[int, int]:
        return (self.primary, self.replica)


def maria_layout_from(ports: list[int]) -> MariaLayout:
    """A layout over the tier's ledger: 2 ports (a bare pair) or PORTS_NEEDED."""
    if len(ports) < PORTS_NEEDED:
        return MariaLayout(ports[0], ports[1])
    return MariaLayout(ports[0], ports[1], ports[2], tuple(ports[3:PORTS_NEEDED]))


def _setting(name: str) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(CONFIG)
    return parser["mariadb"][name]


# a replica calls its primary lost after this long without an event or a heartbeat: the
# watcher's second witness of a primary that froze rather than died
REPLICA_NET_TIMEOUT = int(_setting("slave-net-timeout"))


def connect(port: int, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    settings: dict[str, Any] = {"autocommit": True, "connect_timeout": 2, **kwargs}
    return pymysql.connect(host="127.0.0.1", port=port, user="root", **settings)


def execute(port: int, *statements: str, **kwargs: Any) -> None:
    with connect(port, **kwargs) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def fetch(port: int, sql: str, *args: object, **kwargs: Any) -> Any:
    """The first row `sql` answers on `port`; None when it answers none."""
    with connect(port, **kwargs) as conn, conn.cursor() as cur:
        cur.execute(sql, args or None)
        return cur.fetchone()


def start_server(layout: MariaLayout, root: Path, server_id: int) -> int:
    """Server 1 or 2 (read-only, whatever it was); -> its pid, which leads its group."""
    port = layout.servers[server_id - 1]
    home = root / f"maria{server_id}"
    home.mkdir(parents=True, exist_ok=True)
    cnf = home / "replication.cnf"  # its only option file
    cnf.write_text(string.Template(CONFIG.read_text()).substitute(server_id=server_id))
    pid = start_mysql(Address("mysql", "127.0.0.1", port), home, defaults=cnf)
    assert pid is not None
    return pid


def follow(port: int, primary: int, position: str = "slave_pos", **kwargs: Any) -> None:
    """The server on `port` replicates `primary` by GTID (`current_pos`: a former primary,
    whose own binary log says where it is), read-only; `kwargs` go to `connect`."""
    execute(
        port,
        "SET GLOBAL read_only = ON",
        "STOP SLAVE",
        "SET GLOBAL rpl_semi_sync_master_enabled = OFF",
        f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary},"
        f" MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID={position},"
        " MASTER_CONNECT_RETRY=1",
        "START SLAVE",
        **kwargs,
    )


def pair_proxy(layout: MariaLayout) -> str:
    """HAProxy's configuration of the pair: a server in while its watcher check says primary."""
    servers = [
        (f"maria{k + 1}", "127.0.0.1", port, layout.checks[k])
        for k, port in enumerate(layout.servers)
    ]
    bind = f"127.0.0.1:{layout.address}"
    return haproxy_config("mariadb", bind, servers, CHECK_INTER_MS, CHECK_FALL)


def serving_port(address: int) -> int | None:
    """The server HAProxy's address reaches now (its @@port), None while none."""
    try:
        row = fetch(address, "SELECT @@port", read_timeout=2)
    except pymysql.MySQLError:
        return None
    return None if row is None else int(row[0])


def start(layout: MariaLayout, root: Path, started: list[int]) -> None:
    """The primary, the replica following it by GTID, then (with an address) the watcher
    and HAProxy, each process group appended to `started` as it starts."""
    (root / STATE).unlink(missing_ok=True)  # a new pair: server 1 is the primary
    for server_id in (1, 2):
        started.append(start_server(layout, root, server_id))
    execute(
        layout.primary,
        "CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY 'repl'",
        "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'",
        "SET GLOBAL rpl_semi_sync_master_enabled = ON",  # from now on, before the replica
        "SET GLOBAL read_only = OFF",
    )
    follow(layout.replica, layout.primary)
    wait_until(
        lambda: replica_status(layout.replica).get("Slave_IO_Running") == "Yes",
        f"the MariaDB replica on {layout.replica} replicating",
        START_TIMEOUT,
    )
    if layout.address:
        ports = ",".join(str(p) for p in (*layout.servers, *layout.checks))
        watcher = [sys.executable, "-m", "tools.ha.ha_mariadb_watch", "--ports", ports]
        started.append(spawn([*watcher, "--state", str(root / STATE)], root / "watch.log"))
        (root / "haproxy.cfg").write_text(pair_proxy(layout))
        haproxy = [require("haproxy"), "-db", "-f", str(root / "haproxy.cfg")]
        started.append(spawn(haproxy, root / "haproxy.log"))
        primary = f"HAProxy's address {layout.address} on the MariaDB primary"
        wait_until(lambda: serving_port(layout.address) == layout.primary, primary, START_TIMEOUT)


def replica_status(port: int) -> dict[str, Any]:
    return dict(fetch(port, "SHOW SLAVE STATUS", cursorclass=pymysql.cursors.DictCursor) or {})


def promote(port: int) -> float:
    """Open the replica on `port` for writes once it has applied all it received (its
    primary is gone); -> seconds taken. Idempotent: a promoted server is left as it is."""
    began = time.monotonic()
    status = replica_status(port)
    if status:
        # everything the replica received (its IO thread's GTID position) applied first
        received = str(status.get("Gtid_IO_Pos") or "")
        row = fetch(port, "SELECT MASTER_GTID_WAIT(%s, %s)", received, APPLY_TIMEOUT)
        if row is None or int(row[0]) != 0:
            raise StartError(f"the replica on {port} did not apply {received} in time")
        execute(port, "STOP SLAVE", "RESET SLAVE ALL")
    execute(port, "SET GLOBAL read_only = OFF")
    return time.monotonic() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ha.ha_mariadb", description=__doc__)
    parser.add_argument("command", choices=["promote"])
    parser.add_argument("--port", type=int, required=True, help="the replica's port")
    args = parser.parse_args(argv)
    try:
        took = promote(args.port)
    except (StartError, pymysql.MySQLError) as exc:
        print(f"ha mariadb: {exc}", file=sys.stderr)
        return 1
    print(f"ha mariadb: 127.0.0.1:{args.port} promoted in {took:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
