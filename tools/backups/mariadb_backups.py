"""MariaDB's side of `make backup` / `make restore`: `mariadb-backup` copies of the instance
(each with a SHA-256 manifest, checked before a restore), the binary log archived beside
them, and a restore = the newest copy that ended before the target, prepared, started on a
free port, then the binary log replayed from the copy's position up to the target.

Binary log events carry whole seconds: the replay stops at the first event stamped at or
after the target's second (`--stop-datetime`), so a target with a fraction of a second
loses that second's writes; a target on a whole second is exact.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tools.backups.backup_settings import BackupSettings
from tools.local.db_servers import MariaInstance
from tools.local.local_servers import StartError, require, run

MANIFEST = "fixup-manifest.json"


@dataclass(frozen=True, slots=True)
class MariaBackup:
    path: Path
    stopped: datetime
    binlog_file: str
    binlog_pos: int


def checksums(root: Path) -> dict[str, str]:
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST):
        found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def archive_binlogs(live: MariaInstance, settings: BackupSettings) -> None:
    """Close the current binary log and copy every closed one into the archive."""
    assert live.binlog is not None
    with live.connect() as conn, conn.cursor() as cur:
        cur.execute("FLUSH BINARY LOGS")
        cur.execute("SHOW BINARY LOGS")
        names = [row[0] for row in cur.fetchall()][:-1]  # the last one is open
    settings.binlog_archive.mkdir(parents=True, exist_ok=True)
    for name in names:
        source, target = live.binlog / name, settings.binlog_archive / name
        if not target.exists() or target.stat().st_size != source.stat().st_size:
            shutil.copy2(source, target)


def take(live: MariaInstance, settings: BackupSettings) -> MariaBackup:
    started = datetime.now(UTC)
    label = started.strftime("%Y%m%d-%H%M%S")
    target = settings.mariadb_backups / label
    target.parent.mkdir(parents=True, exist_ok=True)
    run([
        require("mariadb-backup"), "--backup", "--host=127.0.0.1", f"--port={live.port}",
        "--user=root", f"--target-dir={target}",
    ], timeout=600)  # fmt: skip
    stopped = datetime.now(UTC)
    binlog_file, pos = (target / "xtrabackup_binlog_info").read_text().split()[:2]
    archive_binlogs(live, settings)
    manifest = {
        "started": started.isoformat(), "stopped": stopped.isoformat(),
        "binlog_file": binlog_file, "binlog_pos": int(pos), "sha256": checksums(target),
    }  # fmt: skip
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1))
    for old in backups(settings)[: -settings.mariadb_keep]:
        shutil.rmtree(old.path)
    return read(target)


def read(path: Path) -> MariaBackup:
    m = json.loads((path / MANIFEST).read_text())
    return MariaBackup(
        path,
        datetime.fromisoformat(m["stopped"]),
        m["binlog_file"],
        m["binlog_pos"],
    )


def backups(settings: BackupSettings) -> list[MariaBackup]:
    """The complete copies (a manifest is written last), oldest first."""
    root = settings.mariadb_backups
    found = [read(p) for p in root.glob("*/") if (p / MANIFEST).exists()] if root.exists() else []
    return sorted(found, key=lambda b: b.stopped)


def verify(backup: MariaBackup) -> list[str]:
    """Files whose bytes differ from the manifest, or missing."""
    expected = json.loads((backup.path / MANIFEST).read_text())["sha256"]
    found = checksums(backup.path)
    return [
        f"{name}: {'missing' if name not in found else 'checksum mismatch'}"
        for name, digest in expected.items()
        if found.get(name) != digest
    ]


def restore(
    backup: MariaBackup, settings: BackupSettings, target: datetime, home: Path, port: int
) -> MariaInstance:
    """A new instance in `home`, at `target`: the copy prepared, the binary log replayed."""
    data = home / "data"
    shutil.copytree(backup.path, data)
    run([require("mariadb-backup"), "--prepare", f"--target-dir={data}"], timeout=600)
    (data / MANIFEST).unlink()
    if os.geteuid() == 0:
        for path in (home, *home.rglob("*")):
            shutil.chown(path, "mysql", "mysql")
    copy = MariaInstance(data, port)
    copy.start()
    logs = sorted(
        p for p in settings.binlog_archive.glob("binlog.[0-9]*") if p.name >= backup.binlog_file
    )
    if logs:
        stop = target.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        replay = subprocess.run(
            [require("mariadb-binlog", "mariadb-client"), f"--start-position={backup.binlog_pos}",
             f"--stop-datetime={stop}", *map(str, logs)],
            capture_output=True, timeout=600, check=False, env={**os.environ, "TZ": "UTC"},
        )  # fmt: skip
        if replay.returncode != 0:
            raise StartError(
                f"mariadb-binlog failed: {replay.stderr.decode(errors='replace')[-500:]}"
            )
        run(
            [require("mariadb", "mariadb-client"), "-h127.0.0.1", f"-P{port}", "-uroot"],
            stdin=replay.stdout,
        )
    return copy
