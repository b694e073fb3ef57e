"""make migrate-compat: the previous release's own API tests, run on the schema after the
new migrations, fail on a migration that breaks it (naming it) and pass on the current tree:
there with every test file of tools/migrations/migrate_compat.py's default set, as `make
migrate-compat` runs them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.migrations import migrate_compat

ONE_TEST = ["tests/integration/test_orders_api.py::test_order_lifecycle_to_review"]


def test_a_migration_that_drops_a_column_the_release_reads_fails_the_check_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(migrate_compat.ROOT / "migrations", migrations)
    (migrations / "orders" / "0098_order_notes.sql").write_text(
        "-- 0098_order_notes: harmless, and before the breaking one\n"
        "ALTER TABLE orders ADD COLUMN notes text NULL;\n"
    )
    (migrations / "orders" / "0099_drop_customer_name.sql").write_text(
        "-- 0099_drop_customer_name: the release still writes and reads it\n"
        "ALTER TABLE orders DROP COLUMN customer_name;\n"
    )
    code = migrate_compat.main(
        ["--base", "HEAD", "--migrations", str(migrations), "--tests", *ONE_TEST]
    )
    out = capsys.readouterr().out
    assert code == 1, out
    assert "migration orders/0099_drop_customer_name.sql breaks the running release" in out
    assert ONE_TEST[0] in out.splitlines()[-1]


def test_the_current_tree_passes_against_the_previous_release(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`make migrate-compat` itself: every API test file of the release, as CI asks."""
    code = migrate_compat.main([])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "migrate-compat: ok: release " in out, out


FLAKY = """\
from pathlib import Path

RAN = Path(__file__).with_name("ran")


def test_fails_the_first_time() -> None:
    first = not RAN.exists()
    RAN.touch()
    assert not first


def test_always_fails() -> None:
    assert False
"""


def test_a_test_that_fails_once_is_named_and_one_that_fails_again_fails(tmp_path: Path) -> None:
    """The second run on the same schema tells a release's test that met a loaded machine
    from a migration that breaks the release (which fails it every time)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_flaky.py").write_text(FLAKY)
    once = "tests/test_flaky.py::test_fails_the_first_time"
    code, output, flaked = migrate_compat.run_confirmed(tmp_path, [once], 120)
    assert (code, flaked) == (0, [once]), output
    assert f"FAILED {once}" in output
    (tmp_path / "tests" / "ran").unlink()
    code, output, flaked = migrate_compat.run_confirmed(tmp_path, ["tests/test_flaky.py"], 120)
    assert (code, flaked) == (1, []), output
    assert "FAILED tests/test_flaky.py::test_always_fails" in output


def test_an_unknown_base_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate_compat.main(["--base", "no-such-release-tag"]) == 2
    assert "no-such-release-tag" in capsys.readouterr().err
