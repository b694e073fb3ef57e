"""The generated code of the test schemas equals the reviewed golden files.

Regenerate after a deliberate change with `make codegen-golden` and review the diff.
"""

from __future__ import annotations

import pytest

from tools import sqlc

CASES = ["tests/codegen/pg", "tests/codegen/mysql"]


@pytest.mark.parametrize("case", CASES)
def test_generated_code_equals_golden(case: str) -> None:
    sqlc.check(case)  # regenerates into a temp dir (strict: a stale types lock fails too)


@pytest.mark.parametrize("db", ["departments", "points"])
def test_service_repositories_are_current(db: str) -> None:
    sqlc.check(db)


def test_check_fails_on_a_stale_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    golden = sqlc.sql_dir("tests/codegen/pg") / "../golden/pg/books.py"
    original = golden.read_text()
    golden.write_text(original + "# edited by hand\n")
    try:
        with pytest.raises(sqlc.SqlcError, match=r"stale \(books.py\)"):
            sqlc.check("tests/codegen/pg")
    finally:
        golden.write_text(original)


def test_check_fails_on_a_stale_types_lock() -> None:
    lock = sqlc.lock_path("tests/codegen/pg")
    original = lock.read_text()
    lock.write_text(original.replace('"sql_sha256": "', '"sql_sha256": "0', 1))
    try:
        with pytest.raises(sqlc.SqlcError, match=r"types\.lock\.json is stale"):
            sqlc.check("tests/codegen/pg")
    finally:
        lock.write_text(original)
