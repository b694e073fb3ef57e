"""`make backup` and `make restore` against servers of the test's own (a PostgreSQL cluster
whose WAL pgBackRest archives, a MariaDB with its binary log on; the machine's servers are
never reconfigured): a real point-in-time restore of each engine into a new server, and
every refusal, each one line naming its reason with nothing restored."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pymysql
import pytest

from tests.servers import DatabaseFactory
from tools.backups import (
    backup,
    backup_exporter,
    backup_servers,
    mariadb_backups,
    pgbackrest,
    restore,
)
from tools.backups.backup_settings import BackupSettings
from tools.backups.restore import Refused
from tools.local.databases import DATABASES
from tools.local.local_servers import START_TIMEOUT, StartError
from tools.local.server_homes import remove_home, server_home
from tools.migrations import migrate

RULES = Path(__file__).resolve().parents[2] / "observability" / "prometheus" / "rules"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def applied(db: str) -> str:
    """What a restore reports for `db`: every migration of the repository applied."""
    count = sum(1 for f in (MIGRATIONS / db).glob("*.sql") if not f.name.endswith(".rollback.sql"))
    return f"{count} of {count} migrations applied"


ACCOUNT = "00000000-0000-4000-8000-0000000000{:02d}"


def settings_in(root: Path) -> BackupSettings:
    return replace(BackupSettings.from_env(root), s3=None)


@pytest.fixture
def empty() -> Iterator[BackupSettings]:
    """Settings of a run with no servers: refusals must come before any is needed."""
    root = server_home("empty-")
    yield settings_in(root)
    remove_home(root)


@pytest.fixture(scope="module")
def archived() -> Iterator[BackupSettings]:
    """Both archived servers, every database migrated, one backup taken."""
    # the postgres and mysql users reach their directories below it
    root = server_home("backups-")
    settings = settings_in(root)
    try:
        backup_servers.up(settings)
        backup.backup(settings)
        yield settings
    finally:
        for home in settings.restores.glob("*-*"):
            restore.discard(home)
        backup_servers.down(settings)
        remove_home(root)


def restored_homes(settings: BackupSettings) -> list[Path]:
    return sorted(settings.restores.glob("*-*")) if settings.restores.exists() else []


def test_a_database_not_in_the_registry_is_refused(empty: BackupSettings) -> None:
    with pytest.raises(Refused, match=r"unknown db 'ledger'; known databases: departments"):
        restore.restore(empty, "ledger", "2026-01-01T00:00:00Z")


def test_a_time_after_now_is_refused(empty: BackupSettings) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    with pytest.raises(Refused, match=r"is after now \("):
        restore.restore(empty, "orders", later)


def test_a_time_that_does_not_parse_is_refused(empty: BackupSettings) -> None:
    with pytest.raises(Refused, match=r"'yesterday 14:05' is not an ISO 8601 time"):
        restore.restore(empty, "orders", "yesterday 14:05")


def test_a_second_restore_is_refused_while_one_runs(empty: BackupSettings) -> None:
    when = datetime.now(UTC).isoformat()
    with restore.only_one(empty), pytest.raises(Refused, match=r"another restore is running"):
        restore.restore(empty, "orders", when)


def test_the_command_says_why_in_one_line(
    empty: BackupSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BACKUP_ROOT", str(empty.root))
    assert restore.main(["run", "ledger", "2026-01-01T00:00:00Z"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("restore refused: unknown db 'ledger'"), err


@pytest.mark.parametrize("db", ["departments", "points"])
def test_a_copy_whose_migrations_are_not_the_repositorys_first_ones_fails_the_check(
    databases: DatabaseFactory, db: str
) -> None:
    """What a restore checks of its copy (yoyo's record of what is applied): none applied
    fails naming them; the first one applied passes, counted."""
    database = DATABASES[db]
    dsn = databases.create(f"restored_{db}", database.engine)
    with pytest.raises(StartError, match=r"restored migrations \[\] do not match the repo"):
        restore.check_migrations(database, dsn)
    (first,) = migrate.up(db, dsn, steps=1)
    assert restore.check_migrations(database, dsn).endswith(f"migrations applied (last {first})")


@pytest.mark.parametrize("db", ["departments", "points"])
def test_a_time_before_the_first_backup_is_refused(archived: BackupSettings, db: str) -> None:
    first = min(
        [b.stopped for b in pgbackrest.info(archived)]
        + [b.stopped for b in mariadb_backups.backups(archived)]
    )
    with pytest.raises(Refused, match=rf"before the first backup of {db} ended"):
        restore.restore(archived, db, (first - timedelta(minutes=5)).isoformat())
    assert restored_homes(archived) == []


def test_a_time_in_the_second_the_postgresql_backup_ended_is_refused_naming_the_next(
    archived: BackupSettings,
) -> None:
    """pgBackRest keeps a backup's stop in whole seconds and takes no target in that second
    ("unable to find backup set"): refused here in one line, naming the earliest time."""
    stopped = pgbackrest.info(archived)[0].stopped
    earliest = restore.stamp(stopped + timedelta(seconds=1))
    with pytest.raises(Refused, match=rf"ended \({re.escape(earliest)}\)"):
        restore.restore(archived, "departments", (stopped + timedelta(seconds=0.5)).isoformat())
    assert restored_homes(archived) == []


def flip(path: Path) -> bytes:
    """Overwrite bytes in the middle of `path`; -> its original content."""
    original = path.read_bytes()
    middle = len(original) // 2
    path.write_bytes(
        original[:middle]
        + bytes(b ^ 0xFF for b in original[middle : middle + 8])
        + original[middle + 8 :]
    )
    return original


def test_a_corrupted_postgresql_backup_is_detected_before_anything_is_restored(
    archived: BackupSettings,
) -> None:
    files = [p for p in (archived.pg_repo / "backup").rglob("*.lz4") if p.stat().st_size > 4096]
    victim = max(files, key=lambda p: p.stat().st_size)
    original = flip(victim)
    try:
        # a time the backup covers (now() may fall in the second it ended: refused first),
        # once it is past (a time after now is refused too): the clock is what is waited for
        target = restore.earliest_pg_target(pgbackrest.info(archived)[0])
        time.sleep(max(0.0, (target - datetime.now(UTC)).total_seconds()))
        with pytest.raises(Refused, match=r"fails verification: .*checksum invalid: 1"):
            restore.restore(archived, "orders", target.isoformat())
    finally:
        victim.write_bytes(original)
    assert restored_homes(archived) == []


def test_a_corrupted_mariadb_backup_is_detected_before_anything_is_restored(
    archived: BackupSettings,
) -> None:
    copy = mariadb_backups.backups(archived)[-1]
    victim = copy.path / "ibdata1"
    original = flip(victim)
    try:
        with pytest.raises(Refused, match=r"fails verification: ibdata1: checksum mismatch"):
            restore.restore(archived, "points", datetime.now(UTC).isoformat())
    finally:
        victim.write_bytes(original)
    assert restored_homes(archived) == []


def test_postgresql_restores_to_the_point_in_time(archived: BackupSettings) -> None:
    live = backup_servers.load(archived).pg.dsn("fixup_departments")
    before, after = f"before {time.monotonic_ns()}", f"after {time.monotonic_ns()}"
    insert = "INSERT INTO departments (name, address) VALUES (%s, 'Quai 1')"
    earliest = restore.earliest_pg_target(pgbackrest.info(archived)[0])
    with psycopg.connect(live, autocommit=True) as conn:
        conn.execute("SELECT pg_sleep_until(%s)", (earliest,))  # a target pgBackRest takes
        conn.execute(insert, (before,))  # committed: the next statement's now() is later
        target = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        conn.execute(insert, (after,))
    done = restore.restore(archived, "departments", target.isoformat())
    try:
        with psycopg.connect(done.dsn) as copy:
            names = {row[0] for row in copy.execute("SELECT name FROM departments").fetchall()}
        assert before in names, names
        assert after not in names, names
        assert done.migrations.startswith(applied("departments")), done.migrations
        assert done.home.is_relative_to(archived.restores)
        assert str(backup_servers.load(archived).pg.port) not in done.dsn  # a new server
    finally:
        restore.discard(done.home)


def test_mariadb_restores_to_the_point_in_time(archived: BackupSettings) -> None:
    live = backup_servers.load(archived).mariadb
    insert = "INSERT INTO user_points (user_id, points) VALUES (%s, 5)"
    with live.connect("fixup_points") as conn, conn.cursor() as cur:
        cur.execute(insert, (ACCOUNT.format(1),))
        cur.execute("SELECT now(6)")
        now: datetime = cur.fetchone()[0]  # type: ignore[index]
        # binary log events carry whole seconds: a target on a second boundary is exact
        target = now.replace(microsecond=0) + timedelta(seconds=1)
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # the server's clock passes the target before the next write
            cur.execute("SELECT now(6) >= %s", (target,))
            if cur.fetchone()[0]:  # type: ignore[index]
                break
            assert time.monotonic() < deadline, f"the server's clock never reached {target}"
            time.sleep(0.05)  # a poll interval: the condition above is the synchronisation
        cur.execute(insert, (ACCOUNT.format(2),))
    done = restore.restore(archived, "points", target.replace(tzinfo=UTC).isoformat())
    try:
        with pymysql.connect(
            host="127.0.0.1", port=int(done.dsn.split(":")[2].split("/")[0]), user="root",
            database="fixup_points",
        ) as copy, copy.cursor() as cur:  # fmt: skip
            cur.execute("SELECT user_id FROM user_points")
            found = {row[0] for row in cur.fetchall()}
        assert ACCOUNT.format(1) in found, found
        assert ACCOUNT.format(2) not in found, found
        assert done.migrations.startswith(applied("points")), done.migrations
    finally:
        restore.discard(done.home)


def test_the_exporter_exports_what_the_rules_name_before_any_backup(
    empty: BackupSettings,
) -> None:
    """From start-up, before a backup or an archived segment exists: a rule on a series that
    appears only with its first event could not fire on it (tests/e2e/test_metrics_from_startup)."""
    text = backup_exporter.scrape(empty)
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    rules = "".join(path.read_text() for path in RULES.glob("*.yml"))
    named = set(re.findall(r"\b(fixup_(?:backup|wal)_[a-z_]+)", rules))
    assert named, "the backup alerts name no series of the exporter"
    assert named <= names, named - names


def test_the_exporter_reads_the_backups_and_the_archiver(archived: BackupSettings) -> None:
    text = backup_exporter.scrape(archived)
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    taken = [b.stopped.timestamp() for b in pgbackrest.info(archived)]
    for db in DATABASES:  # every database of the registry
        assert float(
            samples[f'fixup_backup_last_success_timestamp_seconds{{database="{db}"}}']
        ) >= min(taken)
    assert float(samples['fixup_backup_repository_bytes{repository="pgbackrest-repo1"}']) > 0
    assert float(samples['fixup_backup_repository_bytes{repository="mariadb"}']) > 0
    assert float(samples["fixup_wal_archived_total"]) > 0  # the backup's own WAL, at least
    assert float(samples["fixup_wal_archive_failures_total"]) == 0
