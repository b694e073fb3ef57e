"""Where backups live and how long they are kept: one place for `make backup`, `make restore`
and the servers whose WAL and binary log they archive (docs/operations.md, "Backups").

Every setting is a `BACKUP_*` environment variable with the default below. The S3 keys
(`BACKUP_S3_KEY`, `BACKUP_S3_KEY_SECRET`) go into no repository file, no command line and
no log: `make backup-servers` writes them to `var/backups/conf.d/s3-keys.conf`, mode 0600,
owned by the user PostgreSQL's `archive_command` runs as, which pgBackRest includes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tools.databases import DATABASES, Database

STANZA = "fixup"  # one stanza per PostgreSQL cluster; a run has one cluster


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
        return cls(
            root=root or Path(env.get("BACKUP_ROOT", "var")).resolve(),
            retention_full=int(env.get("BACKUP_RETENTION_FULL", "2")),
            retention_diff=int(env.get("BACKUP_RETENTION_DIFF", "6")),
            archive_timeout=int(env.get("BACKUP_ARCHIVE_TIMEOUT", "60")),
            mariadb_keep=int(env.get("BACKUP_MARIADB_KEEP", "2")),
            s3=s3,
        )

    @property
    def backups(self) -> Path:
        return self.root / "backups"

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
    def metrics_file(self) -> Path:
        """The textfile `make backup` writes (tools/backup_metrics.py)."""
        return self.backups / "metrics.prom"

    @property
    def servers(self) -> Path:
        """The live servers of the run: data directories and ports (servers.json)."""
        return self.root / "db"

    @property
    def restores(self) -> Path:
        return self.root / "restore"


def pg_databases() -> list[Database]:
    return [d for d in DATABASES.values() if d.engine == "postgresql"]


def mysql_databases() -> list[Database]:
    return [d for d in DATABASES.values() if d.engine == "mysql"]


def pgbackrest_conf(settings: BackupSettings, pg_data: Path, port: int) -> str:
    """The configuration every pgBackRest call of the run reads (`--config`)."""
    lines = [
        "[global]",
        f"repo1-path={settings.pg_repo}",
        f"repo1-retention-full={settings.retention_full}",
        f"repo1-retention-diff={settings.retention_diff}",
        f"log-path={settings.backups / 'log'}",
        f"lock-path={settings.backups / 'lock'}",
        f"spool-path={settings.backups / 'spool'}",
        "log-level-console=warn",
        "log-level-file=info",
        "compress-type=lz4",  # cheap on CPU; the repository is local disk
        "start-fast=y",  # a checkpoint now rather than at the next scheduled one
        f"archive-timeout={max(60, settings.archive_timeout)}",
    ]
    if settings.s3 is not None:
        s3 = settings.s3
        lines += [
            "repo2-type=s3",
            f"repo2-s3-endpoint={s3.endpoint}",
            f"repo2-storage-port={s3.port}",
            f"repo2-s3-bucket={s3.bucket}",
            f"repo2-s3-region={s3.region}",
            f"repo2-path={s3.path}",
            f"repo2-s3-uri-style={s3.uri_style}",
            f"repo2-storage-verify-tls={'y' if s3.verify_tls else 'n'}",
            f"repo2-retention-full={settings.retention_full}",
            f"repo2-retention-diff={settings.retention_diff}",
        ]
        if s3.ca_file:
            lines.append(f"repo2-storage-ca-file={s3.ca_file}")
    lines += [
        "",
        f"[{STANZA}]",
        f"pg1-path={pg_data}",
        f"pg1-port={port}",
        f"pg1-socket-path={pg_data.parent}",
        "pg1-user=postgres",
        "",
    ]
    return "\n".join(lines)
