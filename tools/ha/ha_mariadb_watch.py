"""The MariaDB pair's watcher: Redis Sentinel's part for points' database, one process.

    python -m tools.ha.ha_mariadb_watch --ports PRIMARY,REPLICA,CHECK1,CHECK2 --state FILE

(tools/ha/ha_mariadb.py starts it with the pair.) It keeps one server as the primary (in
`--state`) and serves each server's HAProxy check port: `/primary` answers 200 only for the
chosen server while it answers writable. The primary gone for `DOWN_AFTER` and its
replica's own link to it down too, it promotes the replica and fences the old primary,
unless the primary had gone on alone: its commits wait for the replica's acknowledgement
with no time limit of their own (deploy/mariadb/replication.cnf), and only the watcher
lets them go on without it, once the replica has stopped receiving for `DOWN_AFTER`; until
the replica has caught up again no failover is made, since it may lack what was
acknowledged meanwhile. A former primary that wakes from a freeze with commits still
waiting for its replica's acknowledgement it SIGKILLs instead, so its crash recovery drops
them; a primary started again before it was seen gone (read-only) it replaces by its
replica, or opens again when none can take over (ADR 0039 says why each step)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pymysql

from tools.ha.ha_mariadb import (
    REPLICA_NET_TIMEOUT,
    connect,
    execute,
    fetch,
    follow,
    promote,
)
from tools.local.local_servers import StartError

PROBE_INTERVAL = 0.5  # seconds between two rounds of probes
PROBE_TIMEOUT = 1  # a probe's connect and read bound (pymysql takes whole seconds)
PROBED = {"connect_timeout": PROBE_TIMEOUT, "read_timeout": PROBE_TIMEOUT}
# the fence's statements' read bound: `read_only = ON` waits for commits in progress
FENCE_TIMEOUT = 2
FENCED = {"read_timeout": FENCE_TIMEOUT}
DOWN_AFTER = 2.0  # seconds the chosen primary fails every probe before it is replaced
# the longest a failover takes once the primary is gone (the drills' bound): noticed, the
# relay log applied (well under a second here), HAProxy's next check
FAILOVER_BOUND = max(DOWN_AFTER, REPLICA_NET_TIMEOUT) + PROBE_TIMEOUT + 2 * PROBE_INTERVAL + 2


@dataclass(frozen=True, slots=True)
class Seen:
    """One server's answer to a probe."""

    read_only: bool
    replica: dict[str, Any]  # SHOW SLAVE STATUS; {} when it replicates nothing
    waiting: int = 0  # commits waiting for a replica's acknowledgement
    semi_sync: bool = False  # its commits wait for a replica's acknowledgement
    acknowledged: bool = False  # and its replica acknowledges them (semi-sync's status ON)

    def receiving(self, primary: int) -> bool:
        """A replica of `primary` whose link to it is up (it acknowledges what it receives)."""
        status = self.replica
        return status.get("Master_Port") == primary and status.get("Slave_IO_Running") == "Yes"

    def lost(self, primary: int) -> bool:
        """A replica of `primary` that has lost it and tries again (its IO thread
        `Connecting`), having applied what it received without error (its SQL thread
        running): a candidate. A link stopped by a fatal error (`No`: a diverged history)
        or by hand is not."""
        status = self.replica
        return (
            status.get("Master_Port") == primary
            and status.get("Slave_IO_Running") == "Connecting"
            and status.get("Slave_SQL_Running") == "Yes"
        )


def probe(port: int) -> Seen | None:
    """The server on `port` as it answers now; None when it does not within PROBE_TIMEOUT."""
    try:
        with (
            connect(port, **PROBED, cursorclass=pymysql.cursors.DictCursor) as conn,
            conn.cursor() as cur,
        ):
            cur.execute(
                "SELECT @@read_only AS read_only, @@rpl_semi_sync_master_enabled AS semi_sync"
            )
            row = cur.fetchone() or {}
            cur.execute("SHOW SLAVE STATUS")
            status = cur.fetchone() or {}
            cur.execute(
                "SHOW GLOBAL STATUS WHERE Variable_name IN"
                " ('Rpl_semi_sync_master_wait_sessions', 'Rpl_semi_sync_master_status')"
            )
            semi = {r["Variable_name"]: r["Value"] for r in cur.fetchall()}
    except (pymysql.MySQLError, OSError):
        return None
    read_only, semi_sync = bool(int(row.get("read_only", 1))), bool(int(row.get("semi_sync", 0)))
    waiting = int(semi.get("Rpl_semi_sync_master_wait_sessions", 0))
    acknowledged = semi.get("Rpl_semi_sync_master_status") == "ON"
    return Seen(read_only, dict(status), waiting, semi_sync, acknowledged)


def received(position: str) -> dict[int, int]:
    """A GTID position (`0-1-74,1-2-9`) as domain -> sequence number: under
    gtid-strict-mode a domain's numbers only grow, so comparing them compares histories."""
    parts = (gtid.split("-") for gtid in position.split(",") if gtid.strip())
    return {int(domain): int(seq) for domain, _, seq in parts}


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} ha mariadb watch: {message}", flush=True)


class Watch:
    """The chosen primary, what each server answered last, and the loop that acts on it."""

    def __init__(self, servers: tuple[int, int], state: Path) -> None:
        self.servers = servers
        self.state = state
        saved = json.loads(state.read_text()) if state.exists() else {}
        self.primary = int(saved.get("primary", servers[0]))
        # the primary commits without its replica's acknowledgement (released, or opened
        # again with none): its replica may lack what was acknowledged, so it takes over
        # from a lost primary only once it has caught up (semi-sync's status ON again)
        self.alone = bool(saved.get("alone", False))
        self.healthy: dict[int, bool] = {}  # port -> its check answers 200
        self.lost_since: float | None = None
        self.stalled_since: float | None = None  # commits waiting, the replica not receiving
        self.held_back = False  # a failover refused since the primary was lost (logged once)
        self.stuck: dict[int, str] = {}  # a replica's last replication error, logged once

    def other(self) -> int:
        return next(p for p in self.servers if p != self.primary)

    def take_over(self, why: str) -> None:
        """The replica promoted and kept as the primary (in `--state`); `why` the old
        primary was given up, for the log. A failed promotion is logged and tried again
        at the next round."""
        old, replica = self.primary, self.other()
        try:
            took = promote(replica)
        except (StartError, pymysql.MySQLError) as exc:
            log(f"promoting {replica} failed, trying again: {exc}")
            return
        self.primary, self.lost_since = replica, None
        self.save()
        log(f"primary {old} {why}; {replica} promoted in {took:.2f} s")

    def save(self) -> None:
        self.state.write_text(json.dumps({"primary": self.primary, "alone": self.alone}))

    def step(self) -> None:
        """One round: probe both, answer the checks, fail over or fence as it calls for."""
        seen = {port: probe(port) for port in self.servers}
        mine, other = seen[self.primary], seen[self.other()]
        writable = mine is not None and not mine.read_only and not mine.replica
        self.healthy = {port: port == self.primary and writable for port in self.servers}
        now = time.monotonic()
        if mine is not None:
            self.lost_since, self.held_back = None, False
            if mine.read_only and not mine.replica:
                self.restarted(other)
                return
            if writable:
                self.release(mine, other, now)
            if other is not None:
                self.fence(mine, other)
            return
        self.lost_since = self.lost_since or now
        gone = now - self.lost_since
        if gone < DOWN_AFTER or other is None or not other.lost(self.primary):
            return  # not long enough, no replica, or one that still sees it or cannot take over
        if self.alone:
            if not self.held_back:
                log(f"primary {self.primary} lost while it committed alone: not failed over")
            self.held_back = True
            return
        self.take_over(f"lost for {gone:.1f} s")

    def release(self, mine: Seen, other: Seen | None, now: float) -> None:
        """Commits of the writable primary that have waited for an acknowledgement while
        its replica did not receive (gone, frozen, its link down) for DOWN_AFTER go on
        without one (semi-sync off), and the primary is marked alone until its replica,
        following again (the fence), has caught up."""
        if mine.acknowledged == self.alone:  # semi-sync's status is the primary's own word
            self.alone = not mine.acknowledged
            self.save()
        if not mine.waiting or (other is not None and other.receiving(self.primary)):
            self.stalled_since = None
            return
        self.stalled_since = self.stalled_since or now
        if now - self.stalled_since < DOWN_AFTER:
            return
        try:
            execute(self.primary, "SET GLOBAL rpl_semi_sync_master_enabled = OFF", **FENCED)
        except pymysql.MySQLError as exc:
            log(f"{self.primary} could not go on without its replica, trying again: {exc}")
            return
        self.alone, self.stalled_since = True, None
        self.save()
        log(f"{self.primary} goes on alone: {mine.waiting} commits waited for a lost replica")

    def restarted(self, other: Seen | None) -> None:
        """The chosen primary answers read-only, replicating nothing: started again (a
        server never reopens by itself) before DOWN_AFTER saw it gone. A replica of it
        that received all it holds (and perhaps the commit its recovery dropped) takes over
        as after a failover; with none, the primary is opened for writes again."""
        old = self.primary
        try:
            holds = received(str(fetch(old, "SELECT @@gtid_binlog_pos", **PROBED)[0]))
            status = other.replica if other is not None else {}
            got = received(str(status.get("Gtid_IO_Pos") or ""))
            if status.get("Master_Port") == old and all(
                got.get(domain, -1) >= seq for domain, seq in holds.items()
            ):
                self.take_over("came back read-only")
                return
            # semi-sync stays off until a replica connects to it (the fence's next round)
            execute(old, "SET GLOBAL read_only = OFF", **FENCED)
        except pymysql.MySQLError as exc:
            log(f"primary {old} came back read-only and stays so this round: {exc}")
            return
        log(f"primary {old} came back read-only with no replica to take over: opened again")

    def fence(self, mine: Seen, other: Seen) -> None:
        """The server that is not the primary follows it, read-only, and the primary waits
        for its acknowledgements (semi-sync switched on before it connects again)."""
        port = self.other()
        if other.waiting:
            self.shoot(port, other.waiting)
            return
        error = other.replica.get("Last_IO_Error") or other.replica.get("Last_SQL_Error")
        linked = other.replica.get("Slave_IO_Running") in ("Yes", "Connecting") or error
        if other.read_only and other.replica.get("Master_Port") == self.primary and linked:
            if error and error != self.stuck.get(port):  # read-only, out of the address
                log(f"{port} cannot follow {self.primary}: {error}")
            self.stuck[port] = str(error or "")
            if error or mine.semi_sync:
                return  # it cannot follow, or it follows a primary that waits for it
        try:
            execute(self.primary, "SET GLOBAL rpl_semi_sync_master_enabled = ON", **FENCED)
            follow(port, self.primary, "current_pos", **FENCED)
        except pymysql.MySQLError as exc:
            log(f"{port} could not be made a replica of {self.primary}: {exc}")
            return
        log(f"{port} fenced: read-only, replicating {self.primary}")

    def shoot(self, port: int, waiting: int) -> None:
        """A former primary woken from a freeze, `waiting` commits still waiting for an
        acknowledgement its replica, now the primary, will never send: fencing would let
        them commit (read_only waits for them, semi-sync off releases them) and its history
        part from the new primary's. SIGKILLed (its pid file, which the server names), its
        crash recovery drops them (init-rpl-role=SLAVE) once its supervisor starts it."""
        try:
            pid = int(Path(fetch(port, "SELECT @@pid_file", **PROBED)[0]).read_text())
            os.kill(pid, signal.SIGKILL)
        except (pymysql.MySQLError, OSError, ValueError) as exc:
            log(f"{port} holds {waiting} unacknowledged commits and could not be killed: {exc}")
            return
        log(f"{port} woke with {waiting} commits {self.primary} never acknowledged: SIGKILLed")


def check_server(watch: Watch, server: int, port: int) -> ThreadingHTTPServer:
    """HAProxy's check of `server` on `port`: GET /primary, 200 or 503."""

    class Check(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/primary" and watch.healthy.get(server, False)
            self.send_response(200 if ok else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return  # two checks a second: not logged

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Check)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.ha.ha_mariadb_watch", description=__doc__
    )
    parser.add_argument("--ports", required=True, help="primary,replica,check1,check2")
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args(argv)
    primary, replica, *checks = (int(p) for p in args.ports.split(","))
    watch = Watch((primary, replica), args.state)
    for server, port in zip((primary, replica), checks, strict=True):
        check_server(watch, server, port)
    log(f"watching {primary} and {replica}; primary {watch.primary}")
    while True:
        began = time.monotonic()
        watch.step()
        time.sleep(max(0.0, PROBE_INTERVAL - (time.monotonic() - began)))


if __name__ == "__main__":
    sys.exit(main())
