"""Every migration of every db goes up, down and up again leaving an identical schema."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from lib.db.connecting import engine_of
from tests.servers import DatabaseFactory
from tools.local.databases import DATABASES, database_name
from tools.migrations import migrate


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
    assert f"known databases: {', '.join(DATABASES)}" in err


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """A copy of migrations/chat and sql/chat/sqlc.yaml: `new` never touches tracked files."""
    shutil.copytree(migrate.MIGRATIONS / "chat", tmp_path / "migrations" / "chat")
    (tmp_path / "sql" / "chat").mkdir(parents=True)
    shutil.copy(migrate.ROOT / "sql" / "chat" / "sqlc.yaml", tmp_path / "sql" / "chat")
    return tmp_path


def test_new_writes_the_pair_and_lists_it_in_sqlc_yaml(layout: Path) -> None:
    config = layout / "sql" / "chat" / "sqlc.yaml"
    original = config.read_text()
    before = yaml.safe_load(original)["sql"][0]["schema"]
    up_file, down_file, listed = migrate.new("chat", "add_flags", root=layout)
    up_2, down_2, _ = migrate.new("chat", "add_more", root=layout)
    assert listed == config

    assert up_file.name == f"{len(before) + 1:04d}_add_flags.sql"
    assert down_file.name == f"{len(before) + 1:04d}_add_flags.rollback.sql"
    assert (up_2.name, down_2.name) == (
        f"{len(before) + 2:04d}_add_more.sql",
        f"{len(before) + 2:04d}_add_more.rollback.sql",
    )
    assert all(p.is_file() for p in (up_file, down_file, up_2, down_2))
    text = config.read_text()
    assert yaml.safe_load(text)["sql"][0]["schema"] == [
        *before,
        f"../../migrations/chat/{up_file.name}",
        f"../../migrations/chat/{up_2.name}",
    ]
    # only two lines added, right after the existing list: comments and layout kept
    added = [line for line in text.splitlines() if line not in original.splitlines()]
    assert added == [
        f"      - ../../migrations/chat/{up_file.name}",
        f"      - ../../migrations/chat/{up_2.name}",
    ]
    assert text.startswith("# sqlc config of the chat db")


def test_new_appends_to_a_flow_style_schema_list() -> None:
    config = "sql:\n  - engine: postgresql\n    schema: [a.sql]  # up-migrations\n"
    edited = migrate.with_schema_entry(config, "b.sql")
    assert edited == "sql:\n  - engine: postgresql\n    schema: [a.sql, b.sql]  # up-migrations\n"


def listing(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("db", "name", "message"),
    [
        ("chat", "Bad Name", "lower_snake_case"),
        ("chat", "", "lower_snake_case"),
        ("nosuchdb", "add_x", "unknown db 'nosuchdb'"),
    ],
)
def test_new_refuses_bad_input_and_writes_nothing(
    layout: Path, db: str, name: str, message: str
) -> None:
    before = listing(layout)
    with pytest.raises(ValueError, match=message):
        migrate.new(db, name, root=layout)
    assert listing(layout) == before


def test_new_for_a_db_without_sqlc_yaml_writes_the_pair(layout: Path) -> None:
    """A new service's db has no sql/<db>/sqlc.yaml before its first query: the migration
    is still written (from the engine's template), and listed nowhere."""
    before = listing(layout)
    written = migrate.new("points", "add_x", root=layout)
    assert [p.name for p in written] == ["0001_add_x.sql", "0001_add_x.rollback.sql"]
    assert "ALGORITHM=INSTANT" in written[0].read_text()  # the MariaDB template
    assert set(listing(layout)) - set(before) == {
        "migrations/points/0001_add_x.sql",
        "migrations/points/0001_add_x.rollback.sql",
    }


def test_new_without_a_schema_list_writes_nothing(layout: Path) -> None:
    config = layout / "sql" / "chat" / "sqlc.yaml"
    config.write_text(config.read_text().replace("schema:", "schemas:"))
    before = listing(layout)
    with pytest.raises(ValueError, match="exactly one `schema:` list"):
        migrate.new("chat", "add_x", root=layout)
    assert listing(layout) == before


def test_make_migrate_new_reports_a_bad_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate.main(["new", "chat", "--name", "Bad-Name"]) == 2
    assert "lower_snake_case" in capsys.readouterr().err
