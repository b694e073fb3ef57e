"""pgBackRest on the HA tier (tools/ha_backups.py): the tier's PostgreSQL up with its WAL
archived into a repository of the test's own, `make backup` (tools/backup.py) takes a full
backup from the cluster's primary and a mariadb-backup of points' primary, and `make
restore` (tools/restore.py) brings one database back to a time between two writes into a
new server: the write before the time is there, the one after is not."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import replace
from pathlib import Path

import psycopg

from tools import backup, ha_tier, migrate, pgbackrest, restore
from tools.backup_settings import BackupSettings
from tools.dbadmin import create_database
from tools.restore import pg_time


def _department(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    conn.execute(
        "INSERT INTO departments (id, name, address) VALUES (gen_random_uuid(), %s, %s)",
        (name, "1 Archive Street"),
    )


def test_a_backup_of_the_ha_tier_restores_to_a_time_between_two_writes() -> None:
    with tempfile.TemporaryDirectory(prefix="fixup-ha-backup-") as directory:
        var = Path(directory)
        var.chmod(0o755)  # the postgres and mysql users reach their directories below it
        settings = replace(BackupSettings.from_env(var), s3=None)
        try:
            tier = ha_tier.up(
                var, free_ports=True, parts=("postgres", "mariadb"), archiving=settings
            )
            assert tier.postgres is not None
            dsn = f"{tier.postgres.dsn}/fixup_departments"
            create_database(dsn)
            migrate.up("departments", dsn)
            assert tier.mariadb is not None  # make backup copies points' primary too
            lines = backup.backup(settings)
            assert lines[0].startswith("postgresql: full backup into repo1")
            (taken,) = pgbackrest.info(settings)
            before, after = (f"ha-{uuid.uuid4().hex[:12]}" for _ in range(2))
            with psycopg.connect(dsn, autocommit=True) as conn:
                _department(conn, before)
                # the target: the database's clock, after the first commit, before the second
                moment = conn.execute("SELECT clock_timestamp()").fetchone()
                assert moment is not None
                _department(conn, after)
            done = restore.restore(settings, "departments", moment[0].isoformat())
            try:
                with psycopg.connect(done.dsn, connect_timeout=5) as copy:
                    names = {
                        row[0]
                        for row in copy.execute(
                            "SELECT name FROM departments WHERE name IN (%s, %s)", (before, after)
                        ).fetchall()
                    }
            finally:
                restore.discard(done.home)
            assert names == {before}, f"restored to {pg_time(moment[0])} from {taken.label}"
            assert "migrations applied" in done.migrations
        finally:
            ha_tier.down(var)
