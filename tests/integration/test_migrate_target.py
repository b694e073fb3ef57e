"""What `make migrate-*` acts on, on the real servers: a DSN of the other engine is refused
before anything is created, `migrate-status` creates no database, every command names the
database (host:port/dbname, never the password), and a migration the server refuses is
not met with "run it again"."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.servers import DatabaseFactory, Servers
from tools.local.databases import with_database
from tools.local.dbadmin import database_exists, drop_database
from tools.migrations import migrate


def probe_dsn(server_dsn: str, password: str = "") -> str:
    """A database that does not exist on the server of `server_dsn` (fixup_probe_*), with
    `password` written into the DSN when given (the local servers accept any)."""
    parts = urlsplit(with_database(server_dsn, f"fixup_probe_{uuid.uuid4().hex[:8]}"))
    if not password:
        return parts.geturl()
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@pytest.mark.parametrize("command", ["status", "up", "down"])
def test_a_dsn_of_the_other_engine_is_refused_naming_both_and_creating_nothing(
    servers: Servers,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    dsn = probe_dsn(servers.mysql_dsn)  # departments' migrations are PostgreSQL
    monkeypatch.setenv("DEPARTMENTS_DATABASE_URL", dsn)
    try:
        assert migrate.main([command, "departments"]) == 2
        assert not database_exists(dsn), "the refusal created the database"
    finally:
        drop_database(dsn)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "migrate: departments's migrations are PostgreSQL; DEPARTMENTS_DATABASE_URL points at "
        f"a MySQL server ({migrate.where(dsn)}): give it a postgresql:// URL"
    ]
    with pytest.raises(migrate.EngineMismatchError, match="points's migrations are MySQL;"):
        migrate.status("points", probe_dsn(servers.pg_dsn))  # and the other way round


@pytest.mark.parametrize(("db", "engine"), [("departments", "postgresql"), ("points", "mysql")])
def test_status_of_a_missing_database_lists_all_pending_and_creates_nothing(
    servers: Servers,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    db: str,
    engine: str,
) -> None:
    server = servers.pg_dsn if engine == "postgresql" else servers.mysql_dsn
    # PostgreSQL trusts the local user: a password in the DSN is accepted, and must not show
    dsn = probe_dsn(server, password="s3cret-probe" if engine == "postgresql" else "")
    monkeypatch.setenv(f"{db.upper()}_DATABASE_URL", dsn)
    try:
        assert migrate.main(["status", db]) == 0
        assert not database_exists(dsn), "a read-only status created the database"
    finally:
        drop_database(dsn)
    out = capsys.readouterr().out
    lines = out.splitlines()
    name = dsn.rsplit("/", 1)[1]
    assert lines[0].startswith(f"{db}: "), lines[0]
    assert lines[0].endswith(f"/{name} (does not exist yet: `make migrate-up` creates it)")
    assert ":" in migrate.where(dsn).split("/")[0]  # host:port
    ids = sorted(
        p.stem for p in migrate.migrations_dir(db).glob("*.sql") if ".rollback" not in p.name
    )
    assert lines[1:] == [f"pending  {mid}" for mid in ids]
    password = urlsplit(dsn).password
    assert password is None or password not in out


def test_up_and_status_name_the_database_they_act_on(
    databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = databases.create("target", "postgresql")
    monkeypatch.setenv("DEPARTMENTS_DATABASE_URL", dsn)
    assert migrate.main(["up", "departments"]) == 0
    assert migrate.main(["status", "departments"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = f"departments: {migrate.where(dsn)}"
    assert lines[0] == header
    assert lines[1].startswith("departments: applied ")
    assert lines[2] == header  # status: it exists, no note
    assert all(line.startswith("applied  ") for line in lines[3:]), lines


def test_a_migration_the_server_refuses_is_not_met_with_run_it_again(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    dsn = databases.create("refused", "postgresql")
    (tmp_path / "0001_bad.sql").write_text("ALTER TABLE missing ADD COLUMN note text NULL;\n")
    with pytest.raises(migrate.MigrationFailedError) as failed:
        migrate.up("departments", dsn, source=tmp_path)
    message = str(failed.value)
    assert 'migration 0001_bad relation "missing" does not exist' in message, message
    assert "run `make migrate-up` again" not in message
    assert message.endswith("fix the migration, then run `make migrate-up`"), message
