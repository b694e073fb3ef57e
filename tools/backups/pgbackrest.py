"""pgBackRest as `make backup` and `make restore` call it: the command line (run as the
cluster's owner, with the run's configuration), `info` read as backups with their times,
and `verify` read as a verdict (2.45 exits 0 even when a checksum fails: its text says)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from tools.backups.backup_settings import STANZA, BackupSettings
from tools.local.local_servers import as_user, require, run


def pgbackrest(settings: BackupSettings, command: str, *options: str) -> list[str]:
    config = settings.pgbackrest_options()
    command_line = [require("pgbackrest"), *config, f"--stanza={STANZA}", *options, command]
    return as_user("postgres", command_line)


@dataclass(frozen=True, slots=True)
class PgBackup:
    kind: str  # full, diff, incr
    stopped: datetime
    repo: int


def info(settings: BackupSettings) -> list[PgBackup]:
    """Every backup of the stanza, oldest first."""
    out = run(pgbackrest(settings, "info", "--output=json"))
    stanzas = json.loads(out)
    backups = []
    for stanza in stanzas:
        for b in stanza.get("backup", []):
            backups.append(
                PgBackup(
                    kind=b["type"],
                    stopped=datetime.fromtimestamp(b["timestamp"]["stop"], UTC),
                    repo=b["database"]["repo-key"],
                )
            )
    return sorted(backups, key=lambda b: b.stopped)


def verify_problems(text: str) -> list[str]:
    """What `verify --output=text --verbose` found wrong: one entry per invalid backup or
    archive line; [] when the stanza's status is ok."""
    lines = [line.strip() for line in text.splitlines()]
    if "status: error" not in lines:
        return []
    return [
        line
        for line in lines
        if "status: invalid" in line
        or ("checksum invalid: " in line and "checksum invalid: 0," not in line)
        or ("missing: " in line and not line.startswith("missing: 0,"))
    ] or ["status: error"]


def verify(settings: BackupSettings) -> list[str]:
    return verify_problems(run(pgbackrest(settings, "verify", "--output=text", "--verbose")))
