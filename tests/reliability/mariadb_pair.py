"""points' MariaDB pair under a test that steps the watcher itself (tools/ha/ha_mariadb_watch.py):
the replica lost under a commit until the watcher lets the primary go on alone."""

from __future__ import annotations

import signal
import threading

from tools.ha import ha_mariadb
from tools.ha.ha_mariadb import START_TIMEOUT, MariaLayout
from tools.ha.ha_mariadb_watch import DOWN_AFTER, FENCE_TIMEOUT, PROBE_TIMEOUT, Watch
from tools.local.local_servers import wait_until
from tools.local.processes import stop_pid
from tools.time_scale import scaled


def waiting_commits(port: int) -> int:
    """Commits on `port` waiting for a replica's acknowledgement now."""
    row = ha_mariadb.fetch(port, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_wait_sessions'")
    return int(row[1])


def go_on_alone(watch: Watch, layout: MariaLayout, replica_pid: int, statement: str) -> None:
    """The replica SIGKILLed, `statement` committed on the primary waits for its
    acknowledgement until `watch` (stepped here) lets the primary go on alone."""
    stop_pid(replica_pid, signal.SIGKILL, group=True)
    committed = threading.Event()

    def commit() -> None:
        ha_mariadb.execute(layout.primary, statement)
        committed.set()

    threading.Thread(target=commit, daemon=True).start()
    waited = f"a commit on {layout.primary} waiting for the lost replica"
    wait_until(lambda: waiting_commits(layout.primary) == 1, waited, START_TIMEOUT)

    def released() -> bool:
        watch.step()
        return committed.is_set()

    # the watcher's bound: the replica seen lost for DOWN_AFTER, a round, the statement
    bound = scaled(DOWN_AFTER + 2 * PROBE_TIMEOUT + FENCE_TIMEOUT)
    wait_until(released, f"{layout.primary} going on alone", bound)
    assert watch.alone
