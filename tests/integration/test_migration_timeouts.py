"""MIGRATE_STATEMENT_TIMEOUT takes effect: a migration statement running longer is
cancelled after it (PostgreSQL's statement_timeout, MariaDB's max_statement_time), the
failure names the statement timeout, nothing of the migration stays and the lock timeout
keeps its own value (the lock side: tests/integration/test_migrations_online.py)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from tests.integration.test_migrations import schema_dump
from tests.integration.test_migrations_online import MARGIN, source
from tests.servers import DatabaseFactory
from tools.local.dbadmin import psycopg_dsn
from tools.migrations import migrate

STATEMENT = 0.5  # seconds: MIGRATE_STATEMENT_TIMEOUT of these tests
SLOW = STATEMENT + 4 * MARGIN  # how long the slow statement would run without the limit


def test_the_lock_and_statement_timeouts_reach_the_postgresql_session(
    databases: DatabaseFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each under its own name: a migration records what its session was given."""
    dsn = databases.create("timeouts", "postgresql")
    monkeypatch.setenv("MIGRATE_LOCK_TIMEOUT", "1.5")
    monkeypatch.setenv("MIGRATE_STATEMENT_TIMEOUT", "7")
    name = "0099_seen.sql"
    folder = source(
        tmp_path,
        "departments",
        {
            name: "CREATE TABLE seen_timeouts AS SELECT current_setting('lock_timeout') AS lock,"
            " current_setting('statement_timeout') AS statement;\n"
        },
    )
    assert name[:-4] in migrate.up("departments", dsn, source=folder)
    with psycopg.connect(psycopg_dsn(dsn)) as conn:
        row = conn.execute("SELECT lock, statement FROM seen_timeouts").fetchone()
    assert row == ("1500ms", "7s"), row


@pytest.mark.parametrize(
    ("engine", "db", "sleep"),
    [
        ("postgresql", "departments", "SELECT pg_sleep({s})"),
        ("mysql", "points", "SELECT SLEEP({s})"),
    ],
)
def test_a_statement_longer_than_the_statement_timeout_fails_the_migration(
    databases: DatabaseFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
    db: str,
    sleep: str,
) -> None:
    dsn = databases.create("stmt_timeout", engine)
    migrate.up(db, dsn)
    monkeypatch.setenv("MIGRATE_STATEMENT_TIMEOUT", str(STATEMENT))
    name = "0099_slow.sql"
    sql = f"CREATE TABLE slow_marker (id integer);\n{sleep.format(s=SLOW)};\n"
    folder = source(tmp_path, db, {name: sql})
    before = schema_dump(dsn)
    started = time.monotonic()
    with pytest.raises(migrate.MigrationFailedError) as failed:
        migrate.up(db, dsn, source=folder)
    elapsed = time.monotonic() - started
    message = str(failed.value)
    assert f"statement_timeout ({STATEMENT:g} s)" in message, message
    assert elapsed < STATEMENT + MARGIN, elapsed
    if engine == "postgresql":  # MariaDB commits each DDL statement: its marker stays
        assert schema_dump(dsn) == before
