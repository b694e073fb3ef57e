"""Where backups live and how long they are kept: one place for `make backup`, `make restore`
and the servers whose WAL and binary log they archive (docs/operations.md, "Backups").

Every setting is a `BACKUP_*` environment variable with the default below. The S3 keys
(`BACKUP_S3_KEY`, `BACKUP_S3_KEY_SECRET`) go into no repository file, no command line and
no log: `make backup-servers` writes them to `var/backups/conf.d/s3-keys.conf`, mode 0600,
owned by the user PostgreSQL's `archive_command` runs as, which pgBackRest includes.
"""

from __future__ import annotations

import dataclasses
import os
import string
from dataclasses import dataclass
from pathlib import Path

from tools.local import server_homes
from tools.local.databases import DATABASES, Database

STANZA = "fixup"  # one stanza per PostgreSQL cluster; a run has one cluster (pgbackrest.conf's)
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "pgbackrest"


@dataclass(frozen=True, slots=True)
class S3Repository:
    """pgBackRest's second repository, on S3 (`repo2-*`)."""

    endpoint: str  # host (no scheme: pgBackRest always speaks TLS)
    port: int
    bucket: str
    region: str
    path: str
    verify_tls: bool
    ca_file: str  # "" = the system's CAs
    uri_style: str  # "path" for S3-compatible servers, "host" for AWS


@dataclass(frozen=True, slots=True)
class BackupSettings:
    root: Path  # var/ of the run: backups/, db/, restore/ below it
    retention_full: int  # full backups kept (the older ones, and their WAL, expire)
    retention_diff: int  # differential backups kept
    archive_timeout: int  # s: PostgreSQL switches WAL at least this often (the RPO bound)
    mariadb_keep: int  # mariadb-backup copies kept (binary logs from the oldest one on)
    s3: S3Repository | None
    # where backups/, db/, restore/ are when the postgres or mysql user cannot pass root (a
    # checkout under a 0700 home): the checkout's server root (tools/local/server_homes.py)
    home: Path | None = None

    @classmethod
    def from_env(cls, root: Path | None = None) -> BackupSettings:
        env = os.environ
        endpoint = env.get("BACKUP_S3_ENDPOINT", "")
        s3 = None
        if endpoint:
            s3 = S3Repository(
                endpoint=endpoint,
                port=int(env.get("BACKUP_S3_PORT", "443")),
                bucket=env.get("BACKUP_S3_BUCKET", "fixup-backups"),
                region=env.get("BACKUP_S3_REGION", "us-east-1"),
                path=env.get("BACKUP_S3_PATH", "/pgbackrest"),
                verify_tls=env.get("BACKUP_S3_VERIFY_TLS", "1") != "0",
                ca_file=env.get("BACKUP_S3_CA_FILE", ""),
                uri_style=env.get("BACKUP_S3_URI_STYLE", "path"),
            )
        root = root or Path(env.get("BACKUP_ROOT", "var")).resolve()
        closed = not all(server_homes.passable(user, root) for user in ("postgres", "mysql"))
        return cls(
            root=root,
            retention_full=int(env.get("BACKUP_RETENTION_FULL", "2")),
            retention_diff=int(env.get("BACKUP_RETENTION_DIFF", "6")),
            archive_timeout=int(env.get("BACKUP_ARCHIVE_TIMEOUT", "60")),
            mariadb_keep=int(env.get("BACKUP_MARIADB_KEEP", "2")),
            s3=s3,
            home=server_homes.server_root(root) if closed else None,
        )

    @property
    def base(self) -> Path:
        return self.home or self.root

    @property
    def backups(self) -> Path:
        return self.base / "backups"

    @property
    def pg_repo(self) -> Path:
        return self.backups / "pgbackrest"

    @property
    def pgbackrest_conf(self) -> Path:
        return self.backups / "pgbackrest.conf"

    @property
    def pgbackrest_include(self) -> Path:
        """`--config-include-path`: the keys file, apart from the settings."""
        return self.backups / "conf.d"

    def pgbackrest_options(self) -> list[str]:
        return [
            f"--config={self.pgbackrest_conf}",
            f"--config-include-path={self.pgbackrest_include}",
        ]

    @property
    def mariadb_backups(self) -> Path:
        return self.backups / "mariadb"

    @property
    def binlog_archive(self) -> Path:
        return self.mariadb_backups / "binlog"

    @property
    def servers(self) -> Path:
        """The live servers of the run: data directories and ports (servers.json)."""
        return self.base / "db"

    @property
    def restores(self) -> Path:
        return self.base / "restore"


def pg_databases() -> list[Database]:
    return [d for d in DATABASES.values() if d.engine == "postgresql"]


def mysql_databases() -> list[Database]:
    return [d for d in DATABASES.values() if d.engine == "mysql"]


def pgbackrest_conf(settings: BackupSettings, members: list[tuple[Path, int]]) -> str:
    """deploy/pgbackrest/pgbackrest.conf with the run's paths and retention, and the
    cluster's members (data directory, port) as pg1, pg2, ... of the stanza."""
    lines = [
        f"pg{k}-{key}={value}"
        for k, (data, port) in enumerate(members, 1)
        for key, value in (
            ("path", data),
            ("port", port),
            ("socket-path", data.parent),
            ("user", "postgres"),
        )
    ]
    return string.Template((CONFIG / "pgbackrest.conf").read_text()).substitute(
        backups=settings.backups,
        retention_full=settings.retention_full,
        retention_diff=settings.retention_diff,
        archive_timeout=max(60, settings.archive_timeout),
        members="\n".join(lines),
    )


def write_pgbackrest_conf(settings: BackupSettings, members: list[tuple[Path, int]]) -> None:
    """The configuration every pgBackRest call of the run reads (`--config`), and the S3
    repository's deploy/pgbackrest/s3.conf in the include path when one is configured."""
    settings.pgbackrest_conf.write_text(pgbackrest_conf(settings, members))
    s3_conf = settings.pgbackrest_include / "s3.conf"
    if settings.s3 is None:
        s3_conf.unlink(missing_ok=True)
        return
    s3 = settings.s3
    text = string.Template((CONFIG / "s3.conf").read_text()).substitute(
        {**dataclasses.asdict(s3), "verify_tls": "y" if s3.verify_tls else "n"},
        retention_full=settings.retention_full,
        retention_diff=settings.retention_diff,
    )
    s3_conf.write_text(text + (f"repo2-storage-ca-file={s3.ca_file}\n" if s3.ca_file else ""))
