"""pgBackRest on the HA tier (`make run ha=1`): one stanza for the Patroni cluster, every
member archiving its WAL into `var/backups/` while it is the primary, so `make backup` and
`make restore` work on the tier as on the single archived server (tools/backups/backup_servers.py).

The stanza names the three members (pg1-pg3, all local); `backup` finds the primary among
them and copies from it. Each member's `archive_command` is set in its own Patroni
configuration (`postgresql.parameters`), with its own data directory as pg1: PostgreSQL
passes a WAL path relative to the member's data directory. A promoted standby goes on
archiving into the same stanza (same system identifier, a new timeline).
"""

from __future__ import annotations

from pathlib import Path

from tools.backups.backup_servers import create_stanza, prepare
from tools.backups.backup_settings import STANZA, BackupSettings

__all__ = ["create_stanza", "member_parameters", "prepare"]


def member_parameters(settings: BackupSettings, data: Path) -> dict[str, str]:
    """What member `data` adds to its Patroni `postgresql.parameters`: WAL archived."""
    config = " ".join(settings.pgbackrest_options())
    push = f"pgbackrest {config} --stanza={STANZA} --pg1-path={data} archive-push %p"
    return {
        "archive_mode": "on",
        "archive_command": push,
        "archive_timeout": str(settings.archive_timeout),
    }
