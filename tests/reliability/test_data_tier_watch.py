"""The data tier is watched (ADR 0033): Debian's exporters, a real Prometheus with
rules/data_tier.yml and a real Alertmanager posting to a webhook (tools/data_tier_watch.py).

Against the run's own servers, every exporter's series are there from the first scrapes and
no data tier alert fires on a healthy single server; against the HA tier of
tools/ha_tier.py on free ports, the standbys' replication series exist, and the primary's
postmaster SIGKILLed reaches the webhook as `PostgresPrimaryChanged` within Patroni's
failover time plus the alert's delivery.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.servers import Servers
from tools import ha_tier
from tools.data_tier_watch import DataTierWatch, Watched
from tools.db_exporters import Server
from tools.failover_drill import RECOVERY_LIMIT, kill_postmaster
from tools.ha_postgres import MEMBERS

# the series only a server with standbys or a replica has: the dev stack's live test
# (tests/e2e/test_observability.py) leaves them to this module
REPLICA_ONLY = ("pg_standby_replay_lag_bytes", "mysql_slave_status_slave_io_running")


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
    with tempfile.TemporaryDirectory(prefix="fixup-watch-") as directory:
        var = Path(directory)
        var.chmod(0o755)  # the postgres user runs the members
        try:
            layout = ha_tier.up(var, free_ports=True, parts=("postgres",)).postgres
            assert layout is not None
            _, groups = ha_tier.read_layout(var)
            with DataTierWatch(var / "watch", Watched.of_tier(layout)) as watch:
                watch.wait_scraped()
                assert len(watch.query("pg_replication_is_replica == 1")) == MEMBERS - 1
                assert len(watch.query(f"{REPLICA_ONLY[0]} >= 0")) == MEMBERS - 1
                assert watch.query("pg_standbys_sync == 1")
                assert watch.webhook.find("PostgresPrimaryChanged") is None
                fault = kill_postmaster(var / "ha", layout, groups)
                note = watch.wait_for_alert(
                    "PostgresPrimaryChanged", RECOVERY_LIMIT + watch.delivery
                )
        finally:
            ha_tier.down(var)
    alert = note["alert"]
    assert "postmaster SIGKILLed" in fault
    assert alert["labels"]["severity"] == "ticket"
    assert note["receiver"] == "ticket"
    assert alert["annotations"]["runbook_url"] == "docs/runbooks/PostgresPrimaryChanged.md"
