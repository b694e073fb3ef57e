"""make test's pytest-xdist workers (docs/testing.md, "Parallel workers"): the files held to
the run's lock exist (a renamed one would silently run beside the others), and make test
distributes by file, as the suite's module fixtures need."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import HEAVY, LONGEST

ROOT = Path(__file__).resolve().parents[2]


def test_every_heavy_file_exists() -> None:
    for name in (*LONGEST, *HEAVY):
        assert (ROOT / name).is_file(), f"{name} is gone: rename it in tests/conftest.py"


def test_make_test_runs_files_on_parallel_workers() -> None:
    recipe = (ROOT / "Makefile").read_text()
    assert re.search(r"^TEST_WORKERS \?= [1-9]", recipe, re.MULTILINE)
    assert "pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder" in recipe
