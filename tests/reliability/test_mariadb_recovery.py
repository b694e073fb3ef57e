"""points' MariaDB pair (deploy/mariadb/replication.cnf, tools/ha/ha_mariadb_watch.py, ADR
0039): a former primary that still holds a commit its replica never acknowledged, as one
woken from a freeze after the failover does, is SIGKILLed by the watcher; started again, its
crash recovery drops that commit (init-rpl-role=SLAVE) and it follows the new primary.

The failover drill's faults meet this only when the kill or the freeze lands inside an
acknowledgement's wait (a landing CI's SIGKILL did, once: the old primary, init-rpl-role
unset, kept the commit and could not follow). Here the wait is made certain: the replica
stops receiving, so the primary's commit waits for an acknowledgement that never comes.

And a primary its supervisor starts again before the watcher saw it gone (read-only, it
never reopens by itself) hands the address to its replica, or, with none, is opened again.
"""

from __future__ import annotations

import json
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from tests.reliability.mariadb_pair import go_on_alone, waiting_commits
from tools.ha import ha_mariadb
from tools.ha.ha_mariadb import START_TIMEOUT, MariaLayout
from tools.ha.ha_mariadb_watch import Watch, probe
from tools.local.local_servers import wait_until
from tools.local.ports import free_ports
from tools.local.processes import alive, stop_pid


def applied(port: int, position: str) -> bool:
    """The server on `port` has applied every transaction of GTID `position`."""
    row = ha_mariadb.fetch(port, "SELECT MASTER_GTID_WAIT(%s, %s)", position, START_TIMEOUT)
    return row is not None and int(row[0]) == 0


def binlog_position(port: int) -> str:
    return str(ha_mariadb.fetch(port, "SELECT @@gtid_binlog_pos")[0])


def rows(port: int) -> list[int]:
    with ha_mariadb.connect(port) as conn, conn.cursor() as cur:
        cur.execute("SELECT n FROM acks.t ORDER BY n")
        return [int(n) for (n,) in cur.fetchall()]


@dataclass
class Pair:
    """A bare pair (no watcher process: each test steps a `Watch` itself)."""

    layout: MariaLayout
    root: Path
    pids: list[int] = field(default_factory=list)  # the servers' process groups, in order

    def restart(self, server_id: int) -> None:
        """Server 1 or 2 started again, as a supervisor would (read-only, its recovery)."""
        self.pids[server_id - 1] = ha_mariadb.start_server(self.layout, self.root, server_id)

    def following(self, watch: Watch, port: int) -> dict[str, object]:
        """`watch` stepped until the server on `port` follows, or stopped on an error (a
        diverged history); -> its replication status then."""
        link: dict[str, object] = {}

        def settled() -> bool:
            watch.step()
            seen = probe(port)
            link.update(seen.replica if seen else {})
            return link.get("Slave_IO_Running") == "Yes" or bool(link.get("Last_IO_Error"))

        wait_until(settled, f"the server on {port} following", START_TIMEOUT)
        return link


@contextmanager
def bare_pair() -> Iterator[Pair]:
    """A primary and its semi-sync replica seeded with row 1, stopped whatever happens."""
    with tempfile.TemporaryDirectory(prefix="fixup-maria-") as directory:
        root = Path(directory)
        root.chmod(0o755)  # the mysql user runs the servers
        pair = Pair(MariaLayout(*free_ports(2)), root)
        try:
            ha_mariadb.start(pair.layout, root, pair.pids)
            ha_mariadb.execute(
                pair.layout.primary,
                "CREATE DATABASE acks",
                "CREATE TABLE acks.t (n INT PRIMARY KEY) ENGINE=InnoDB",
                "INSERT INTO acks.t VALUES (1)",
            )
            assert applied(pair.layout.replica, binlog_position(pair.layout.primary))
            yield pair
        finally:
            for pid in reversed(pair.pids):
                stop_pid(pid, group=True)


def checks(watch: Watch, open_port: int) -> bool:
    """`watch` stepped: its HAProxy checks say `open_port` alone is the primary."""
    watch.step()
    return watch.healthy == {port: port == open_port for port in watch.servers}


def test_a_former_primary_holding_an_unacknowledged_commit_is_killed_drops_it_and_follows() -> None:
    with bare_pair() as pair:
        layout, pids = pair.layout, pair.pids
        ha_mariadb.execute(layout.replica, "STOP SLAVE IO_THREAD")

        refused: list[BaseException] = []

        def commit_unacknowledged() -> None:
            try:
                ha_mariadb.execute(layout.primary, "INSERT INTO acks.t VALUES (2)")
            except pymysql.MySQLError as exc:
                refused.append(exc)

        writer = threading.Thread(target=commit_unacknowledged)
        writer.start()
        wait_until(
            lambda: waiting_commits(layout.primary) == 1,
            f"a commit on {layout.primary} waiting for its replica's acknowledgement",
            START_TIMEOUT,
        )
        # the failover as the watcher made it while the primary was frozen
        ha_mariadb.promote(layout.replica)
        ha_mariadb.execute(layout.replica, "INSERT INTO acks.t VALUES (3)")
        state = pair.root / "primary.json"
        state.write_text(json.dumps({"primary": layout.replica}))
        watch = Watch(layout.servers, state)

        def killed() -> bool:  # the woken primary seen: SIGKILLed, its commit never acknowledged
            watch.step()  # (a probe answered late on a busy machine: the next round sees it)
            return not alive(pids[0], group=True)

        wait_until(
            killed, f"the former primary {layout.primary} SIGKILLed by the watcher", START_TIMEOUT
        )
        writer.join()
        assert refused, "the commit the former primary was killed in was acknowledged"

        pair.restart(1)  # its crash recovery
        link = pair.following(watch, layout.primary)
        assert not link.get("Last_IO_Error"), link["Last_IO_Error"]
        assert applied(layout.primary, binlog_position(layout.replica)), link
        assert rows(layout.primary) == rows(layout.replica) == [1, 3]


def test_a_primary_restarted_before_the_watcher_noticed_hands_over_to_its_replica() -> None:
    """A supervisor faster than DOWN_AFTER starts a SIGKILLed primary again: it answers,
    read-only (it never reopens by itself), so it was never "lost". The watcher hands the
    address to the replica, which holds all it had, and the restarted one follows it."""
    with bare_pair() as pair:
        layout = pair.layout
        watch = Watch(layout.servers, pair.root / "primary.json")
        wait_until(lambda: checks(watch, layout.primary), "the primary's check", START_TIMEOUT)
        stop_pid(pair.pids[0], signal.SIGKILL, group=True)
        pair.restart(1)  # before any probe saw it gone

        handed_over = f"the address's check on {layout.replica}"
        wait_until(lambda: checks(watch, layout.replica), handed_over, START_TIMEOUT)
        ha_mariadb.execute(layout.replica, "INSERT INTO acks.t VALUES (2)")
        link = pair.following(watch, layout.primary)
        assert not link.get("Last_IO_Error"), link["Last_IO_Error"]
        assert applied(layout.primary, binlog_position(layout.replica))
        assert rows(layout.primary) == rows(layout.replica) == [1, 2]


def test_a_primary_restarted_with_its_replica_down_is_opened_again() -> None:
    """The same restart with the replica gone: nothing can take over, so the watcher opens
    the restarted primary for writes again rather than leave points on 503s, committing
    alone (no commit waits for a replica that is not there); the replica back, it follows
    and the primary waits for its acknowledgements again."""
    with bare_pair() as pair:
        layout = pair.layout
        watch = Watch(layout.servers, pair.root / "primary.json")
        stop_pid(pair.pids[1], group=True)
        stop_pid(pair.pids[0], signal.SIGKILL, group=True)
        pair.restart(1)

        opened = f"{layout.primary} writable again"
        wait_until(lambda: checks(watch, layout.primary), opened, START_TIMEOUT)
        ha_mariadb.execute(layout.primary, "CREATE DATABASE opened")
        assert waiting_commits(layout.primary) == 0

        pair.restart(2)

        def acknowledging() -> bool:  # the primary waits, for a replica it has
            watch.step()
            with ha_mariadb.connect(layout.primary) as conn, conn.cursor() as cur:
                cur.execute("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'")
                status = dict(cur.fetchall())
            return status["Rpl_semi_sync_master_status"] == "ON" and (
                status["Rpl_semi_sync_master_clients"] == "1"
            )

        wait_until(acknowledging, f"{layout.replica} acknowledging again", START_TIMEOUT)
        ha_mariadb.execute(layout.primary, "CREATE DATABASE acknowledged")
        assert applied(layout.replica, binlog_position(layout.primary))


def test_a_primary_whose_replica_is_lost_goes_on_alone_and_is_not_failed_over_from() -> None:
    """The replica lost under a commit: the commit waits for its acknowledgement with no
    limit of the server's own, until the watcher lets the primary go on alone (within
    DOWN_AFTER and a few rounds, not the server's timeout). The primary then lost too, the
    replica (back, behind it) is not promoted: it lacks an acknowledged commit. The
    primary back, it is opened again (or the replica, caught up from it, takes over), the
    other follows, and the pair acknowledges again with the commit on both."""
    with bare_pair() as pair:
        layout = pair.layout
        watch = Watch(layout.servers, pair.root / "primary.json")
        wait_until(lambda: checks(watch, layout.primary), "the primary's check", START_TIMEOUT)
        assert not watch.alone
        go_on_alone(watch, layout, pair.pids[1], "INSERT INTO acks.t VALUES (2)")
        assert json.loads((pair.root / "primary.json").read_text())["alone"] is True

        stop_pid(pair.pids[0], signal.SIGKILL, group=True)
        pair.restart(2)  # back, behind the primary, which is gone

        def decided() -> bool:  # a failover refused, or made
            watch.step()
            return watch.held_back or watch.primary != layout.primary

        wait_until(decided, "the watcher's failover decision", START_TIMEOUT)
        assert watch.primary == layout.primary, "promoted a replica lacking a commit"
        replica = probe(layout.replica)
        assert replica is not None
        assert replica.read_only
        assert replica.lost(layout.primary)

        pair.restart(1)

        # the primary back read-only: opened again, or, when its replica has received all it
        # holds by the watcher's next round (a loaded machine's), the replica takes over
        # (the watcher's `restarted`); either way the other follows and acknowledges
        def acknowledging() -> bool:
            return checks(watch, watch.primary) and not watch.alone

        wait_until(acknowledging, "a primary again, acknowledged by its replica", START_TIMEOUT)
        primary = watch.primary
        [follower] = [port for port in layout.servers if port != primary]
        ha_mariadb.execute(primary, "INSERT INTO acks.t VALUES (3)")  # the follower acknowledges
        assert applied(follower, binlog_position(primary))
        assert rows(primary) == rows(follower) == [1, 2, 3]
