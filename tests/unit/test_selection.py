"""`make test svc=X` and `make test-fast` select through two options of tests/conftest.py."""

from __future__ import annotations

import subprocess
import sys

from tools.service_process import ROOT


def collected(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {line.split("::")[0] for line in proc.stdout.splitlines() if "::" in line}


def test_svc_keeps_the_files_named_for_it_or_importing_it() -> None:
    files = collected("--svc=catalog", "tests/integration", "tests/unit")
    assert "tests/integration/test_catalog_api.py" in files  # named for it
    assert "tests/integration/test_orders_api.py" in files  # imports services.catalog
    assert "tests/integration/test_departments_api.py" not in files
    assert "tests/unit/test_passwords.py" not in files


def test_no_servers_drops_every_test_that_asks_for_a_server() -> None:
    everything = collected("tests/codegen")
    fast = collected("tests/codegen", "--no-servers")
    assert "tests/codegen/test_runtime_pg.py" in everything
    assert "tests/codegen/test_runtime_pg.py" not in fast  # every test of it needs PostgreSQL
    assert "tests/codegen/test_golden.py" in fast
