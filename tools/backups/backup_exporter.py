"""The backups' exporter, scraped by Prometheus (job `backups`, 127.0.0.1:9188 in a local
run): every series from start-up, read afresh at each scrape from the repositories and the
archived cluster of `make backup-servers` (BACKUP_ROOT).

    python -m tools.backups.backup_exporter [--listen 127.0.0.1:9188]

- `fixup_backup_last_success_timestamp_seconds{database}`: when the newest good backup of
  the database ended; 0 while there is none, or while the repository cannot be read (a
  backup nobody can read is no backup): BackupTooOld then fires.
- `fixup_backup_repository_bytes{repository}`: bytes each repository holds.
- `fixup_wal_archive_failures_total`, `fixup_wal_archived_total`: PostgreSQL's
  `pg_stat_archiver` of the archived cluster (0 while it does not run): WalArchiveFailing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import psycopg
from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tools.backups import mariadb_backups, pgbackrest
from tools.backups.backup_servers import load
from tools.backups.backup_settings import BackupSettings, mysql_databases, pg_databases
from tools.local.local_servers import StartError

LISTEN = "127.0.0.1:9188"


def size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def newest(settings: BackupSettings) -> dict[str, float]:
    """database -> when its newest good backup ended; 0 when there is none or no readable one."""
    pg: list[pgbackrest.PgBackup] = []
    maria: list[mariadb_backups.MariaBackup] = []
    if (settings.servers / "servers.json").exists():
        with suppress(StartError):
            pg, maria = pgbackrest.info(settings), mariadb_backups.backups(settings)
    return {
        **{d.name: pg[-1].stopped.timestamp() if pg else 0.0 for d in pg_databases()},
        **{d.name: maria[-1].stopped.timestamp() if maria else 0.0 for d in mysql_databases()},
    }


def archiver(settings: BackupSettings) -> tuple[int, int]:
    """(archived, failed) WAL segments of the archived cluster; (0, 0) when it is away."""
    try:
        pg = load(settings).pg
        with psycopg.connect(pg.dsn(), connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT archived_count, failed_count FROM pg_stat_archiver"
            ).fetchone()
    except (StartError, psycopg.OperationalError):
        return 0, 0
    return (int(row[0]), int(row[1])) if row else (0, 0)


class Backups(Collector):
    def __init__(self, settings: BackupSettings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        last = GaugeMetricFamily(
            "fixup_backup_last_success_timestamp_seconds",
            "When the newest good backup of a database ended.",
            labels=["database"],
        )
        for database, ended in newest(self.settings).items():
            last.add_metric([database], round(ended))
        held = GaugeMetricFamily(
            "fixup_backup_repository_bytes",
            "Bytes held by a backup repository.",
            labels=["repository"],
        )
        held.add_metric(["pgbackrest-repo1"], size(self.settings.pg_repo))
        held.add_metric(["mariadb"], size(self.settings.mariadb_backups))
        archived, failed = archiver(self.settings)
        yield from (last, held)
        yield CounterMetricFamily(
            "fixup_wal_archived", "WAL segments archive_command archived.", value=archived
        )
        yield CounterMetricFamily(
            "fixup_wal_archive_failures", "WAL archive attempts that failed.", value=failed
        )


def registry(settings: BackupSettings) -> CollectorRegistry:
    found = CollectorRegistry()
    found.register(Backups(settings))
    return found


def scrape(settings: BackupSettings) -> str:
    return generate_latest(registry(settings)).decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.backups.backup_exporter", description=__doc__
    )
    parser.add_argument("--listen", default=LISTEN)
    args = parser.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    _, thread = start_http_server(int(port), host, registry(BackupSettings.from_env()))
    thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
