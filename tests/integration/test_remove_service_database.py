"""`make remove-service` never drops the service's database and says what is true of it
(tools/service_uses.py, `database_note`): asked of the server the service's settings point
at (`<SVC>_DATABASE_URL` here), the database is left there, or that server has none, or the
server could not be asked."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from lib import registry
from tests.servers import DatabaseFactory
from tools.local.databases import database_name, with_database
from tools.service_uses import database_note

NEVER = "remove-service never drops a database"


@pytest.mark.parametrize(
    ("service", "engine"), [("departments", "postgresql"), ("points", "mysql")]
)
def test_a_database_there_is_said_to_be_left(
    service: str,
    engine: str,
    databases: DatabaseFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    dsn = databases.create("rmnote", engine)
    monkeypatch.setenv(f"{service.upper()}_DATABASE_URL", dsn)
    note = database_note(registry.get(service), tmp_path)  # tmp_path: no .env there
    parts = urlsplit(dsn)
    left = f"its database {database_name(dsn)} is left on {parts.hostname}:{parts.port}"
    assert note == f"{left} ({NEVER}: drop it there yourself)"


def test_no_database_there_is_said_so(
    databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dsn = with_database(databases.server_dsn("postgresql"), "fixup_zzqneverthere")
    monkeypatch.setenv("DEPARTMENTS_DATABASE_URL", dsn)
    note = database_note(registry.get("departments"), tmp_path)
    assert note.endswith(" has no database fixup_zzqneverthere"), note
    assert "left" not in note


def test_a_server_that_cannot_be_asked_is_said_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DEPARTMENTS_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/fixup_x")
    note = database_note(registry.get("departments"), tmp_path)
    assert note.startswith("could not ask 127.0.0.1:1 whether its database fixup_x is there: "), (
        note
    )
    assert note.endswith(f"({NEVER})")
