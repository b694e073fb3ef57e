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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg

from tools.backups import mariadb_backups, pgbackrest
from tools.backups.backup_servers import load
from tools.backups.backup_settings import BackupSettings, mysql_databases, pg_databases
from tools.local.db_servers import ServerError

LISTEN = "127.0.0.1:9188"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def render(settings: BackupSettings) -> str:
    """When each database's newest good backup ended, and each repository's size."""
    pg = pgbackrest.info(settings)
    maria = mariadb_backups.backups(settings)
    name = "fixup_backup_last_success_timestamp_seconds"
    lines = [
        f"# HELP {name} When the newest good backup of a database ended.",
        f"# TYPE {name} gauge",
    ]
    newest = {
        **{d.name: pg[-1].stopped.timestamp() if pg else 0.0 for d in pg_databases()},
        **{d.name: maria[-1].stopped.timestamp() if maria else 0.0 for d in mysql_databases()},
    }
    lines += [f'{name}{{database="{n}"}} {t:.0f}' for n, t in newest.items()]
    lines += [
        "# HELP fixup_backup_repository_bytes Bytes held by a backup repository.",
        "# TYPE fixup_backup_repository_bytes gauge",
        f'fixup_backup_repository_bytes{{repository="pgbackrest-repo1"}} {size(settings.pg_repo)}',
        f'fixup_backup_repository_bytes{{repository="mariadb"}} {size(settings.mariadb_backups)}',
    ]
    return "\n".join(lines) + "\n"


def nothing_yet() -> str:
    """The series at 0: no readable backup, no repository."""
    name = "fixup_backup_last_success_timestamp_seconds"
    lines = [f"# TYPE {name} gauge"]
    lines += [f'{name}{{database="{d.name}"}} 0' for d in (*pg_databases(), *mysql_databases())]
    lines += ["# TYPE fixup_backup_repository_bytes gauge"]
    lines += [
        f'fixup_backup_repository_bytes{{repository="{r}"}} 0'
        for r in ("pgbackrest-repo1", "mariadb")
    ]
    return "\n".join(lines) + "\n"


def archiver(settings: BackupSettings) -> tuple[int, int]:
    """(archived, failed) WAL segments of the archived cluster; (0, 0) when it is away."""
    try:
        pg = load(settings).pg
        with psycopg.connect(pg.dsn(), connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT archived_count, failed_count FROM pg_stat_archiver"
            ).fetchone()
    except (ServerError, psycopg.OperationalError):
        return 0, 0
    return (int(row[0]), int(row[1])) if row else (0, 0)


def scrape(settings: BackupSettings) -> str:
    try:
        text = render(settings) if (settings.servers / "servers.json").exists() else nothing_yet()
    except ServerError:
        text = nothing_yet()
    archived, failed = archiver(settings)
    return text + "\n".join([
        "# HELP fixup_wal_archived_total WAL segments archive_command archived.",
        "# TYPE fixup_wal_archived_total counter",
        f"fixup_wal_archived_total {archived}",
        "# HELP fixup_wal_archive_failures_total WAL archive attempts that failed.",
        "# TYPE fixup_wal_archive_failures_total counter",
        f"fixup_wal_archive_failures_total {failed}",
    ]) + "\n"  # fmt: skip


def serve(settings: BackupSettings, listen: str) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_error(404)
                return
            body = scrape(settings).encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # a line per scrape says nothing

    host, port = listen.rsplit(":", 1)
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.backups.backup_exporter", description=__doc__
    )
    parser.add_argument("--listen", default=LISTEN)
    args = parser.parse_args(argv)
    serve(BackupSettings.from_env(), args.listen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
