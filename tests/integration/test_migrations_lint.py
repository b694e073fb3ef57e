"""make migrate-lint: each unsafe pattern in a deliberately bad migration is found, the safe
version of each passes, migrate-new's templates pass unchanged, applied files stay pinned."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.migrations import migrate, migrate_lint
from tools.migrations.migrate_sql import Finding, is_transactional

ROOT = migrate_lint.ROOT


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """The real sql/<db>/queries, sql/common and .squawk.toml; empty migration folders."""
    for db in ("orders", "points"):
        shutil.copytree(ROOT / "sql" / db / "queries", tmp_path / "sql" / db / "queries")
        (tmp_path / "migrations" / db).mkdir(parents=True)
    shutil.copytree(ROOT / "sql" / "common", tmp_path / "sql" / "common")
    shutil.copy(ROOT / ".squawk.toml", tmp_path)
    return tmp_path


def lint(layout: Path, db: str, sql: str) -> list[Finding]:
    path = layout / "migrations" / db / "0042_change.sql"
    path.write_text(sql)
    return migrate_lint.lint_file(path, layout)


def rules(found: list[Finding]) -> set[str]:
    return {f.rule for f in found}


# (unsafe SQL, the rule that must find it, the safe version of the same change)
PG_CASES = {
    "index without CONCURRENTLY": (
        "CREATE INDEX orders_status_idx ON orders (status);\n",
        "require-concurrent-index-creation",
        "-- transactional: false\nDROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);\n",
    ),
    "concurrent index that a re-run cannot repair": (
        "-- transactional: false\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);\n",
        "concurrent-index-not-rerunnable",
        "-- transactional: false\nDROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);\n",
    ),
    "concurrent index inside a transaction": (
        "DROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);\n",
        "ban-concurrent-index-creation-in-transaction",
        "-- transactional: false\nDROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);\n",
    ),
    "constraint without NOT VALID": (
        "ALTER TABLE orders ADD CONSTRAINT orders_x_chk CHECK (char_length(address) < 400);\n",
        "constraint-missing-not-valid",
        "ALTER TABLE orders ADD CONSTRAINT orders_x_chk CHECK (char_length(address) < 400)"
        " NOT VALID;\n",
    ),
    "NOT VALID and VALIDATE in one transaction": (
        "ALTER TABLE orders ADD CONSTRAINT orders_x_chk CHECK (version < 100) NOT VALID;\n"
        "ALTER TABLE orders VALIDATE CONSTRAINT orders_x_chk;\n",
        "constraint-missing-not-valid",
        # the VALIDATE in the next migration: it scans without blocking reads or writes
        "ALTER TABLE orders VALIDATE CONSTRAINT orders_x_chk;\n",
    ),
    "NOT NULL column without default": (
        "ALTER TABLE orders ADD COLUMN note text NOT NULL;\n",
        "adding-required-field",
        "ALTER TABLE orders ADD COLUMN note text NOT NULL DEFAULT '';\n",
    ),
    "column type change": (
        "ALTER TABLE orders ALTER COLUMN description TYPE varchar(3000);\n",
        "changing-column-type",
        "ALTER TABLE orders ADD COLUMN description_long text NULL;\n",
    ),
    "drop of a column the code still reads": (
        "ALTER TABLE jobs DROP COLUMN started_at;\n",
        "drop-column-still-read",
        # a table no query reads through `*` (the export reads jobs' every column)
        "ALTER TABLE erased_users DROP COLUMN IF EXISTS legacy_note;\n",
    ),
    "drop of a table the code still uses": (
        "DROP TABLE reviews;\n",
        "drop-table-still-read",
        "DROP TABLE IF EXISTS legacy_reviews;\n",
    ),
    "rename of a column": (
        "ALTER TABLE orders RENAME COLUMN address TO location;\n",
        "renaming-column",
        "ALTER TABLE orders ADD COLUMN location text NULL;\n",
    ),
}

MYSQL_CASES = {
    "ALTER that may copy the table": (
        "ALTER TABLE user_points ADD COLUMN note VARCHAR(100) NULL;\n",
        "mysql-alter-without-online-algorithm",
        "ALTER TABLE user_points ADD COLUMN note VARCHAR(100) NULL,"
        " ALGORITHM=INSTANT, LOCK=NONE;\n",
    ),
    "index without LOCK=NONE": (
        "CREATE INDEX points_ledger_reason_idx ON points_ledger (reason);\n",
        "mysql-alter-without-online-algorithm",
        "ALTER TABLE points_ledger ADD INDEX points_ledger_reason_idx (reason),"
        " ALGORITHM=INPLACE, LOCK=NONE;\n",
    ),
    "CHECK added to an existing table": (
        "ALTER TABLE user_points ADD CONSTRAINT user_points_cap_chk CHECK (points < 1000000),"
        " ALGORITHM=INPLACE, LOCK=NONE;\n",
        "mysql-constraint-scans-table",
        "CREATE TABLE point_caps (cap INT NOT NULL, CONSTRAINT point_caps_chk CHECK (cap > 0));\n"
        "ALTER TABLE point_caps ADD CONSTRAINT point_caps_max_chk CHECK (cap < 100);\n",
    ),
    "NOT NULL column without default": (
        "ALTER TABLE user_points ADD COLUMN tier INT NOT NULL, ALGORITHM=INSTANT, LOCK=NONE;\n",
        "adding-required-field",
        "ALTER TABLE user_points ADD COLUMN tier INT NOT NULL DEFAULT 0,"
        " ALGORITHM=INSTANT, LOCK=NONE;\n",
    ),
    "column type change": (
        "ALTER TABLE points_ledger MODIFY reason VARCHAR(300) NOT NULL,"
        " ALGORITHM=INPLACE, LOCK=NONE;\n",
        "changing-column-type",
        "ALTER TABLE points_ledger ADD COLUMN reason_long VARCHAR(300) NULL,"
        " ALGORITHM=INSTANT, LOCK=NONE;\n",
    ),
    "drop of a column the code still reads": (
        "ALTER TABLE user_points DROP COLUMN points, ALGORITHM=INSTANT, LOCK=NONE;\n",
        "drop-column-still-read",
        # a table no query reads through `*` (the export reads user_points' every column)
        "ALTER TABLE audit_events DROP COLUMN legacy_note, ALGORITHM=INSTANT, LOCK=NONE;\n",
    ),
    "a statement that locks the table": (
        "OPTIMIZE TABLE points_ledger;\n",
        "mysql-locks-table",
        "ANALYZE TABLE points_ledger;\n",
    ),
}


CASES = {"orders": PG_CASES, "points": MYSQL_CASES}  # a PostgreSQL db, a MariaDB db


@pytest.mark.parametrize(
    ("db", "case"), [(db, case) for db, cases in CASES.items() for case in sorted(cases)]
)
def test_unsafe_pattern_is_found_and_its_safe_version_passes(
    layout: Path, db: str, case: str
) -> None:
    unsafe, rule, safe = CASES[db][case]
    found = lint(layout, db, unsafe)
    assert rule in rules(found), f"{case}: {rule} not among {found}"
    assert all(f.path == f"migrations/{db}/0042_change.sql" and f.line >= 1 for f in found)
    assert lint(layout, db, safe) == [], f"{case}: the safe version was refused"


def test_a_table_created_in_the_same_migration_may_be_indexed_and_constrained(
    layout: Path,
) -> None:
    """Nobody uses a table this migration creates: plain indexes, validating constraints
    and type changes on it lock nothing that matters (squawk skips them, and so does the
    MariaDB check)."""
    pg = (
        "CREATE TABLE notes (id uuid NOT NULL, body text NOT NULL, CONSTRAINT notes_pkey"
        " PRIMARY KEY (id));\nCREATE INDEX notes_body_idx ON notes (body);\n"
        "ALTER TABLE notes ADD CONSTRAINT notes_body_chk CHECK (body <> '');\n"
    )
    assert lint(layout, "orders", pg) == []
    my = (
        "CREATE TABLE notes (id INT NOT NULL, body VARCHAR(10) NOT NULL) ENGINE=InnoDB;\n"
        "CREATE INDEX notes_body_idx ON notes (body);\n"
        "ALTER TABLE notes MODIFY body VARCHAR(20) NOT NULL;\n"
    )
    assert lint(layout, "points", my) == []


def test_select_star_reads_every_column(layout: Path) -> None:
    """`SELECT * FROM points_ledger` (a query of sql/points) returns every column: dropping
    any of them, even one no query names, changes what the running release gets."""
    found = lint(layout, "points", "ALTER TABLE points_ledger DROP COLUMN legacy_note,"
                 " ALGORITHM=INSTANT, LOCK=NONE;\n")  # fmt: skip
    assert rules(found) == {"drop-column-still-read"}


def test_findings_name_the_line_of_the_statement(layout: Path) -> None:
    sql = "-- 0042_change: two changes\n\nALTER TABLE orders ADD COLUMN a text NULL;\n\n" + (
        "CREATE INDEX orders_a_idx\n    ON orders (a);\n"
    )
    found = lint(layout, "orders", sql)
    assert [(f.line, f.rule) for f in found] == [(5, "require-concurrent-index-creation")]
    assert str(found[0]).startswith("migrations/orders/0042_change.sql:5: ")


@pytest.mark.parametrize(("db", "index"), [("orders", False), ("orders", True), ("points", False)])
def test_migrate_new_templates_pass_the_lint_unchanged(layout: Path, db: str, index: bool) -> None:
    up_file, down_file = migrate.new(db, "next_change", root=layout, index=index)[:2]
    assert migrate_lint.lint_file(up_file, layout) == []
    assert is_transactional(up_file.read_text()) is not index
    assert is_transactional(down_file.read_text()) is not index


def test_the_repository_passes_and_an_edited_applied_migration_is_refused(
    tmp_path: Path,
) -> None:
    found, skipped = migrate_lint.lint()
    assert found == [], "\n".join(map(str, found))
    assert skipped == len(migrate_lint.baseline(ROOT)) >= 18

    copy = tmp_path / "repo"
    for part in ("migrations", "sql"):
        shutil.copytree(ROOT / part, copy / part)
    shutil.copy(ROOT / ".squawk.toml", copy)
    applied = copy / "migrations" / "orders" / "0004_outbox_traceparent.sql"
    applied.write_text(applied.read_text() + "-- a harmless-looking comment\n")
    found, _ = migrate_lint.lint(root=copy)
    assert [(f.path, f.rule) for f in found] == [
        ("migrations/orders/0004_outbox_traceparent.sql", "applied-migration-edited")
    ]


def test_main_fails_on_a_finding_and_names_it(
    layout: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = layout / "migrations" / "orders" / "0042_change.sql"
    bad.write_text("CREATE INDEX orders_status_idx ON orders (status);\n")
    monkeypatch.setattr(migrate_lint, "ROOT", layout)
    assert migrate_lint.main([str(bad)]) == 1
    out = capsys.readouterr()
    assert "migrations/orders/0042_change.sql:1: require-concurrent-index-creation" in out.out
    assert "1 finding(s)" in out.err


def test_a_function_body_is_one_statement(layout: Path) -> None:
    """`;` inside $$ ... $$ ends nothing: a body's DROP is no statement of the migration."""
    sql = (
        "CREATE FUNCTION purge() RETURNS void LANGUAGE plpgsql AS $body$\n"
        "BEGIN\n    DROP TABLE reviews;\nEND $body$;\n"
        "ALTER TABLE jobs DROP COLUMN started_at;\n"
    )
    found = lint(layout, "orders", sql)
    assert [(f.line, f.rule) for f in found] == [(5, "drop-column-still-read")]
