"""`make test svc=X` and `make test-fast` select through two options of tests/conftest.py.

`make test svc=X` misses no test of X (tests/selection.py): every test file is selected
for some service, or tests lib/, tools/ or codegen/ only and names no service in its code,
or declares what it exercises; the files a helper module ties to a service are selected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lib import registry
from tests.selection import ALL, declared, exercised, has_declaration, named_in_code
from tools.local.service_process import ROOT
from tools.time_scale import scaled


def collected(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {line.split("::")[0] for line in proc.stdout.splitlines() if "::" in line}


def test_svc_keeps_the_files_named_for_it_or_importing_it() -> None:
    # through the directories: pytest collects a file named on the command line whatever
    # its hooks say, so --svc is what leaves files out on the way
    files = collected("--svc=catalog", "tests/integration", "tests/unit")
    assert "tests/integration/test_catalog_api.py" in files  # named for it
    assert "tests/integration/test_orders_api.py" in files  # imports services.catalog
    assert "tests/integration/test_departments_api.py" not in files
    assert "tests/unit/test_passwords.py" not in files


def test_no_servers_drops_every_test_that_asks_for_a_server() -> None:
    # two files, named (--no-servers drops tests, not files: collecting all of tests/codegen
    # twice took a minute of a worker in CI)
    cases = ("tests/codegen/test_runtime_pg.py", "tests/codegen/test_golden.py")
    everything = collected(*cases)
    fast = collected(*cases, "--no-servers")
    assert "tests/codegen/test_runtime_pg.py" in everything
    assert "tests/codegen/test_runtime_pg.py" not in fast  # every test of it needs PostgreSQL
    assert "tests/codegen/test_golden.py" in fast


NAMES = [service.name for service in registry.MICROSERVICES]


def test_files_a_helper_ties_to_users_are_in_its_selection() -> None:
    for name in ("test_revocation_actors.py", "test_conditional_stamps.py"):
        assert "users" in exercised(ROOT / "tests" / "integration" / name, NAMES), name


def test_every_test_file_is_selected_or_names_no_service() -> None:
    missed = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        if exercised(path, NAMES) or has_declaration(path):
            continue
        if named := named_in_code(path, NAMES):
            missed[str(path.relative_to(ROOT))] = sorted(named)
    assert missed == {}, (
        f"test files that name a service but are in no `make test svc=` selection: {missed};"
        " import what they exercise, or declare it: EXERCISES = ('users',), 'all' or ()"
    )


def test_declarations_name_real_services() -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(bad)
        for path in sorted((ROOT / "tests").rglob("test_*.py"))
        if (bad := declared(path) - {*NAMES, ALL})
    }
    assert wrong == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('EXERCISES = ("chat",)\n', {"chat"}),
        ('EXERCISES = "all"\n', set(NAMES)),
        ("from tests.selection_helper import x\n", {"orders"}),  # through the helper
        ("from lib import registry\nfor s in registry.MICROSERVICES: pass\n", set(NAMES)),
        ("EXERCISES = ()\nPATH = '/v1/orders'\n", set()),
        ("from tests.selection_helper import x\nEXERCISES = ()\n", set()),  # it decides
        ("x = 'fixup-users'\n", set()),
    ],
)
def test_selection_rules(tmp_path: Path, text: str, expected: set[str]) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "selection_helper.py").write_text("from services.orders.app import create_app\n")
    test = tests / "test_example.py"
    test.write_text(text)
    assert exercised(test, NAMES, root=tmp_path) == expected
