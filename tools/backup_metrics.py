"""The backups' metrics as a Prometheus textfile (`var/backups/metrics.prom`), written by
`make backup`: when each database's newest good backup ended, and each repository's
size (`time() - fixup_backup_last_success_timestamp_seconds` is a backup's age)."""

from __future__ import annotations

from pathlib import Path

from tools import mariadb_backups, pgbackrest
from tools.backup_settings import BackupSettings, mysql_databases, pg_databases


def size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def render(settings: BackupSettings) -> str:
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
    lines += [
        f'fixup_backup_last_success_timestamp_seconds{{database="{n}"}} {t:.0f}'
        for n, t in newest.items()
    ]
    lines += [
        "# HELP fixup_backup_repository_bytes Bytes held by a backup repository.",
        "# TYPE fixup_backup_repository_bytes gauge",
        f'fixup_backup_repository_bytes{{repository="pgbackrest-repo1"}} {size(settings.pg_repo)}',
        f'fixup_backup_repository_bytes{{repository="mariadb"}} {size(settings.mariadb_backups)}',
    ]
    return "\n".join(lines) + "\n"


def write_metrics(settings: BackupSettings) -> None:
    """Written whole, then renamed: a scrape never reads half a file."""
    target = settings.metrics_file
    partial = target.with_suffix(".tmp")
    partial.write_text(render(settings))
    partial.replace(target)
