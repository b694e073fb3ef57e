"""`make backup`: a pgBackRest backup of the run's PostgreSQL cluster (every PostgreSQL
database of the registry; full when the repository has none, else differential; into each
repository) and a `mariadb-backup` copy of the MariaDB instance, its binary log archived
(Prometheus reads the backups' age from tools/backups/backup_exporter.py).

    python -m tools.backups.backup [--type full|diff]
"""

from __future__ import annotations

import argparse
import sys
import time

from tools.backups import mariadb_backups, pgbackrest
from tools.backups.backup_servers import load
from tools.backups.backup_settings import BackupSettings
from tools.local.local_servers import StartError, run
from tools.local.locks import LockBusy, file_lock

BACKUP_TIMEOUT = 3600.0  # s: a backup of a large cluster takes long; never unbounded


def backup(settings: BackupSettings, kind: str | None = None) -> list[str]:
    """Take both; -> one line per backup taken."""
    servers = load(settings)
    if kind is None:
        has_full = any(b.kind == "full" for b in pgbackrest.info(settings))
        kind = "diff" if has_full else "full"
    repos = [1] + ([2] if settings.s3 is not None else [])
    lines = []
    for repo in repos:
        began = time.monotonic()
        run(
            pgbackrest.pgbackrest(settings, "backup", f"--type={kind}", f"--repo={repo}"),
            timeout=BACKUP_TIMEOUT,
        )
        lines.append(
            f"postgresql: {kind} backup into repo{repo} in {time.monotonic() - began:.1f} s"
        )
    began = time.monotonic()
    copy = mariadb_backups.take(servers.mariadb, settings)
    lines.append(f"mariadb: mariadb-backup {copy.path.name} in {time.monotonic() - began:.1f} s")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.backups.backup", description=__doc__)
    parser.add_argument("--type", choices=["full", "diff"], default=None)
    args = parser.parse_args(argv)
    settings = BackupSettings.from_env()
    try:
        with file_lock("backup"):  # one backup at a time (pgBackRest locks its stanza too)
            for line in backup(settings, args.type):
                print(line)
    except LockBusy as exc:
        print(f"backup: {exc}", file=sys.stderr)
        return 2
    except StartError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
