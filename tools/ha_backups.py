"""pgBackRest on the HA tier (`make run ha=1`): one stanza for the Patroni cluster, every
member archiving its WAL into `var/backups/` while it is the primary, so `make backup` and
`make restore` work on the tier as on the single archived server (tools/backup_servers.py).

The stanza names the three members (pg1-pg3, all local); `backup` finds the primary among
them and copies from it. Each member's `archive_command` is set in its own Patroni
configuration (`postgresql.parameters`), with its own data directory as pg1: PostgreSQL
passes a WAL path relative to the member's data directory. A promoted standby goes on
archiving into the same stanza (same system identifier, a new timeline).
"""

from __future__ import annotations

from pathlib import Path

from tools.backup_servers import write_keys
from tools.backup_settings import STANZA, BackupSettings, pgbackrest_conf
from tools.db_servers import owned_by, run
from tools.pgbackrest import pgbackrest

MEMBER_PATHS = ("pg1", "pg2", "pg3")


def stanza_conf(settings: BackupSettings, data: list[Path], ports: list[int]) -> str:
    """The run's pgBackRest configuration with every member of the cluster in the stanza."""
    text = pgbackrest_conf(settings, data[0], ports[0])
    extra = [
        line
        for k in range(1, len(data))
        for line in (
            f"pg{k + 1}-path={data[k]}",
            f"pg{k + 1}-port={ports[k]}",
            f"pg{k + 1}-socket-path={data[k].parent}",
            f"pg{k + 1}-user=postgres",
        )
    ]
    return text.rstrip("\n") + "\n" + "\n".join(extra) + "\n"


def member_parameters(settings: BackupSettings, data: Path) -> dict[str, str]:
    """What member `data` adds to its Patroni `postgresql.parameters`: WAL archived."""
    config = " ".join(settings.pgbackrest_options())
    push = f"pgbackrest {config} --stanza={STANZA} --pg1-path={data} archive-push %p"
    return {
        "archive_mode": "on",
        "archive_command": push,
        "archive_timeout": str(settings.archive_timeout),
    }


def prepare(settings: BackupSettings, data: list[Path], ports: list[int]) -> None:
    """The repository's directories (owned by the members' user) and the configuration,
    before any member starts: archive-push reads it from the first WAL on."""
    for path in ("pgbackrest", "log", "lock", "spool", "conf.d"):
        owned_by(settings.backups / path, "postgres")
    write_keys(settings)  # the S3 repository's, when one is configured
    settings.pgbackrest_conf.write_text(stanza_conf(settings, data, ports))


def create_stanza(settings: BackupSettings) -> None:
    """The stanza, once a primary runs (archive-push fails, and is retried, until then)."""
    run(pgbackrest(settings, "stanza-create"))
