"""Every migration of every db goes up, down and up again leaving an identical schema."""

from __future__ import annotations

import re
import subprocess
from urllib.parse import urlsplit

import pytest

from tests.servers import DatabaseFactory
from tools import migrate
from tools.databases import DATABASES, database_name, engine_of


def schema_dump(dsn: str) -> str:
    if engine_of(dsn) == "postgresql":
        out = subprocess.run(
            ["pg_dump", "--schema-only", "--no-owner", "--no-privileges", "-d", dsn],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        # pg_dump 15+ prints a random \restrict token per run; it is not schema.
        return "\n".join(
            line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
        )
    parts = urlsplit(dsn)
    out = subprocess.run(
        [
            "mariadb-dump",
            "--no-data",
            "--skip-comments",
            "--skip-dump-date",
            f"-h{parts.hostname}",
            f"-P{parts.port or 3306}",
            f"-u{parts.username or 'root'}",
            *([f"-p{parts.password}"] if parts.password else []),
            database_name(dsn),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return re.sub(r" AUTO_INCREMENT=\d+", "", out)


@pytest.mark.parametrize("db", sorted(DATABASES))
def test_each_migration_round_trips(db: str, databases: DatabaseFactory) -> None:
    dsn = databases.create(f"rt_{db}", DATABASES[db].engine)
    total = len(list(migrate.migrations_dir(db).glob("[0-9]*_*.rollback.sql")))
    assert total >= 1, f"{db} has no migrations"
    migrate.up(db, dsn, steps=0)  # creates yoyo's own tables so "before" compares like with like
    for step in range(total):
        before = schema_dump(dsn)
        applied = migrate.up(db, dsn, steps=1)
        assert len(applied) == 1, f"step {step}: expected one migration applied, got {applied}"
        after = schema_dump(dsn)
        assert after != before, f"{applied[0]} changed nothing"
        assert migrate.down(db, dsn, steps=1) == applied
        assert schema_dump(dsn) == before, f"{applied[0]}: rollback left a different schema"
        migrate.up(db, dsn, steps=1)
        assert schema_dump(dsn) == after, f"{applied[0]}: re-applying gave a different schema"
    assert all(applied for _, applied in migrate.status(db, dsn))


def test_down_all_removes_every_table(databases: DatabaseFactory) -> None:
    dsn = databases.create("rt_all", "postgresql")
    migrate.up("orders", dsn)
    migrate.down("orders", dsn, steps=None)
    dump = schema_dump(dsn)
    assert "CREATE TABLE public.orders" not in dump
    assert "CREATE TABLE public._yoyo_migration" in dump


def test_unknown_db_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate.main(["up", "nosuchdb"]) == 2
    err = capsys.readouterr().err
    assert "unknown db 'nosuchdb'" in err
    assert "departments, users, points, catalog, orders, chat" in err


def test_new_creates_both_files_with_next_number(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(migrate, "MIGRATIONS", tmp_path)
    (tmp_path / "chat").mkdir()
    (tmp_path / "chat" / "0007_old.sql").write_text("")
    up_file, down_file = migrate.new("chat", "add_flags")
    assert up_file.name == "0008_add_flags.sql"
    assert down_file.name == "0008_add_flags.rollback.sql"
    assert up_file.exists()
    assert down_file.exists()
    with pytest.raises(ValueError, match="lower_snake_case"):
        migrate.new("chat", "Bad Name")
