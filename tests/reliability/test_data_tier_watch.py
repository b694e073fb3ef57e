"""The data tier is watched (ADR 0033): Debian's exporters, a real Prometheus with
rules/data_tier.yml and a real Alertmanager posting to a webhook (tools/ha/data_tier_watch.py).

Against the run's own servers, every exporter's series are there from the first scrapes and
no data tier alert fires on a healthy single server; against the HA tier of
tools/ha/ha_tier.py on free ports, the standbys' replication series exist (db_exporters'
REPLICA_ONLY: the dev stack's live test leaves them to this module), and the primary's
postmaster SIGKILLed reaches the webhook as `PostgresPrimaryChanged` within Patroni's
failover time plus the alert's delivery.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tests.reliability.mariadb_pair import go_on_alone
from tests.servers import Servers
from tools.deploy.db_exporters import Server
from tools.drills.failover_redis import kill_master
from tools.drills.ha_faults import RECOVERY_LIMIT, kill_postmaster
from tools.ha import ha_mariadb, ha_tier
from tools.ha.data_tier_watch import DataTierWatch, Watched
from tools.ha.ha_mariadb import MariaLayout
from tools.ha.ha_mariadb_watch import Watch
from tools.ha.ha_postgres import MEMBERS
from tools.ha.ha_redis import DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS
from tools.local.ports import free_ports
from tools.local.processes import stop_pid

# Sentinel: the master down for DOWN_AFTER_MS, then a failover within FAILOVER_TIMEOUT_MS
REDIS_FAILOVER = (DOWN_AFTER_MS + FAILOVER_TIMEOUT_MS) / 1000


def test_the_exporters_series_are_scraped_from_startup(tmp_path: Path, servers: Servers) -> None:
    watched = Watched(
        (
            Server.from_url("postgres", servers.pg_dsn),
            Server.from_url("mysqld", servers.mysql_dsn),
            Server.from_url("redis", servers.redis_url),
        )
    )
    with DataTierWatch(tmp_path, watched) as watch:
        watch.wait_scraped()
        for expr in (
            "pg_replication_is_replica == 0",  # observability/postgres_exporter/queries.yml
            "pg_standbys_streaming == 0",
            "pg_settings_max_connections",
            "pg_stat_database_numbackends",
            'redis_instance_info{role="master"}',
            "mysql_global_status_uptime",
        ):
            assert watch.query(expr), f"no series for {expr}"
        assert watch.query('ALERTS{alertstate="firing"}') == []


def test_a_primary_killed_reaches_the_webhook_as_primary_changed() -> None:
    """Then the Redis master killed reaches it as `RedisMasterChanged`."""
    with tempfile.TemporaryDirectory(prefix="fixup-watch-") as directory:
        var = Path(directory)
        var.chmod(0o755)  # the postgres user runs the members
        try:
            tier = ha_tier.up(var, free_ports=True)
            assert tier.postgres is not None
            assert tier.redis is not None
            _, redis_groups = ha_tier.read_redis(var)
            with DataTierWatch(var / "watch", Watched.of_tier(tier.postgres, tier.redis)) as watch:
                watch.wait_scraped()
                assert len(watch.query("pg_replication_is_replica == 1")) == MEMBERS - 1
                assert len(watch.query("pg_standby_replay_lag_bytes >= 0")) == MEMBERS - 1
                assert watch.query("pg_standbys_sync == 1")
                assert watch.webhook.find("PostgresPrimaryChanged") is None
                killed = time.monotonic()
                fault = kill_postmaster(var / "ha", tier.postgres).what
                note = watch.wait_for_alert(
                    "PostgresPrimaryChanged", RECOVERY_LIMIT + watch.delivery
                )
                print(f"PostgresPrimaryChanged at the webhook {time.monotonic() - killed:.1f} s")
                assert watch.webhook.find("RedisMasterChanged") is None
                killed = time.monotonic()
                kill_master(tier.redis, redis_groups)
                redis_note = watch.wait_for_alert(
                    "RedisMasterChanged", REDIS_FAILOVER + watch.delivery
                )
                print(f"RedisMasterChanged at the webhook {time.monotonic() - killed:.1f} s")
        finally:
            ha_tier.down(var)
    alert = note["alert"]
    assert "postmaster SIGKILLed" in fault
    assert alert["labels"]["severity"] == "ticket"
    assert note["receiver"] == "ticket"
    assert alert["annotations"]["runbook_url"] == "docs/runbooks/PostgresPrimaryChanged.md"
    assert redis_note["alert"]["labels"]["job"] == "redis"


def test_a_stopped_mariadb_replica_reaches_the_webhook() -> None:
    """points' primary and GTID replica (tools/ha/ha_mariadb.py): the replica's SQL thread
    stopped pages as `MariaDBReplicaStopped` (its `for:` shortened to one interval); then
    the replica SIGKILLed under a commit, the pair's watcher lets the primary go on alone,
    which pages as `MariaDBPrimaryAlone`."""
    with tempfile.TemporaryDirectory(prefix="fixup-watch-") as directory:
        root = Path(directory)
        root.chmod(0o755)  # the mysql user runs the servers
        layout = MariaLayout(*free_ports(2))
        pids: list[int] = []
        ha_mariadb.start(layout, root / "maria", pids)
        try:
            watched = Watched.of_tier(mariadb=layout)
            with DataTierWatch(root / "watch", watched, for_override="1s") as watch:
                watch.wait_scraped()
                replica = watch.targets["mysqld"][1]  # of_tier: the primary, then the replica
                running = watch.query("mysql_slave_status_slave_sql_running == 1")
                assert [r["metric"]["instance"] for r in running] == [replica]
                assert watch.query("mysql_slave_status_slave_io_running == 1")
                assert watch.query("mysql_slave_status_seconds_behind_master")
                with ha_mariadb.connect(layout.replica) as conn, conn.cursor() as cur:
                    cur.execute("STOP SLAVE SQL_THREAD")
                note = watch.wait_for_alert("MariaDBReplicaStopped", 2 * watch.delivery)
                primary = watch.targets["mysqld"][0]
                assert watch.webhook.find("MariaDBPrimaryAlone") is None
                assert watch.query("mysql_global_status_rpl_semi_sync_master_status == 1")
                go_on_alone(
                    Watch(layout.servers, root / "primary.json"),
                    layout,
                    pids[1],
                    "CREATE DATABASE alone",
                )
                alone = watch.wait_for_alert("MariaDBPrimaryAlone", 2 * watch.delivery)
        finally:
            for pid in reversed(pids):
                stop_pid(pid, group=True)
    assert note["receiver"] == "page"
    assert note["alert"]["labels"]["instance"] == replica
    assert alone["receiver"] == "page"
    assert alone["alert"]["labels"]["instance"] == primary
