"""MariaDB (points) with a GTID replica and a scripted promotion.

    python -m tools.ha_mariadb promote --var var

The primary writes a binary log with global transaction ids and waits, for every commit,
until the replica has the transaction in its relay log (semi-synchronous replication,
`AFTER_SYNC`: the commit is acknowledged only once it exists on two machines, so promoting
the replica loses nothing acknowledged). There is no failover manager for MariaDB in this
tier: losing the primary is an operator's (or the drill's) `promote`, which waits for the
replica to apply everything it received, detaches it and opens it for writes; the services
then reach it at its address (POINTS_DATABASE_URL). Both start through
tools/local_servers.py's MariaDB under `var/ha/`.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from tools.local_servers import Address, StartError, start_mysql

# a commit waits this long for the replica's acknowledgement before the primary goes on
# alone (asynchronously, counted in Rpl_semi_sync_master_no_tx): longer than any failover
SEMI_SYNC_TIMEOUT_MS = 30_000
APPLY_TIMEOUT = 30.0  # the replica applying what it received before it is promoted


@dataclass(frozen=True, slots=True)
class MariaLayout:
    primary: int
    replica: int


def _options(server_id: int) -> tuple[str, ...]:
    """The primary (server 1) waits for its replica's acknowledgement of every commit; the
    replica (2) only acknowledges: were it to wait as a primary too, every event it applies
    would wait for a replica it does not have."""
    role = (
        ("--rpl-semi-sync-master-enabled=ON", "--rpl-semi-sync-master-wait-point=AFTER_SYNC")
        if server_id == 1
        else ("--rpl-semi-sync-slave-enabled=ON",)
    )
    return (
        f"--server-id={server_id}",
        "--log-bin=binlog",
        "--binlog-format=ROW",
        "--log-slave-updates=ON",
        "--gtid-strict-mode=ON",
        *role,
        f"--rpl-semi-sync-master-timeout={SEMI_SYNC_TIMEOUT_MS}",
        "--default-time-zone=+00:00",
    )


def connect(port: int, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(
        host="127.0.0.1", port=port, user="root", autocommit=True, connect_timeout=2, **kwargs
    )


def _execute(port: int, *statements: str) -> None:
    with connect(port) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def start(layout: MariaLayout, root: Path, started: list[int] | None = None) -> list[int]:
    """The primary, then the replica following it by GTID; -> both pids (each leads its
    process group), appended to `started` as each starts: a failure half-way still knows
    what to stop."""
    pids = started if started is not None else []
    for server_id, port in ((1, layout.primary), (2, layout.replica)):
        pid = start_mysql(
            Address("mysql", "127.0.0.1", port), root / f"maria{server_id}", _options(server_id)
        )
        assert pid is not None
        pids.append(pid)
    _execute(
        layout.primary,
        "CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY 'repl'",
        "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'",
    )
    _execute(
        layout.replica,
        "SET GLOBAL read_only = ON",
        f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={layout.primary},"
        " MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos,"
        " MASTER_CONNECT_RETRY=1",
        "START SLAVE",
    )
    deadline = time.monotonic() + APPLY_TIMEOUT
    while replica_status(layout.replica).get("Slave_IO_Running") != "Yes":
        if time.monotonic() > deadline:
            raise StartError(f"the MariaDB replica on {layout.replica} does not replicate")
        time.sleep(0.1)
    return pids


def replica_status(port: int) -> dict[str, Any]:
    with connect(port, cursorclass=pymysql.cursors.DictCursor) as conn, conn.cursor() as cur:
        cur.execute("SHOW SLAVE STATUS")
        return dict(cur.fetchone() or {})


def promote(port: int) -> float:
    """Open the replica on `port` for writes once it has applied all it received (its
    primary is gone); -> seconds taken. Idempotent: a promoted server is left as it is."""
    began = time.monotonic()
    status = replica_status(port)
    if status:
        # everything the replica received (its IO thread's GTID position) applied first
        received = str(status.get("Gtid_IO_Pos") or "")
        with connect(port) as conn, conn.cursor() as cur:
            cur.execute("SELECT MASTER_GTID_WAIT(%s, %s)", (received, APPLY_TIMEOUT))
            row = cur.fetchone()
        if row is None or int(row[0]) != 0:
            raise StartError(f"the replica on {port} did not apply {received} in time")
        _execute(port, "STOP SLAVE", "RESET SLAVE ALL")
    _execute(port, "SET GLOBAL read_only = OFF")
    return time.monotonic() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ha_mariadb", description=__doc__)
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
