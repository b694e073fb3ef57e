"""docs/security.md, the ASVS 5.0 level 2 table of V6, V7 and V9: a row for every
requirement, and each row names tests that exist (a `def test_...` in the file it names) or
says why it names none (`n/a:`, `open:`)."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "security.md"
ROW = re.compile(r"^\| (V\d+\.\d+\.\d+)(?: \(L3\))? \| [^|]+ \| (.+) \|$")
NODE = re.compile(r"^(tests/[\w/]+\.py)::(test_\w+)$")
REASONS = ("n/a: ", "open: ")

# ASVS 5.0.0's level 2 requirements of V6, V7 and V9 (V6.3.8, level 3, asked by issue 65)
LEVEL_2 = {
    *{f"V6.1.{n}" for n in range(1, 4)},
    *{f"V6.2.{n}" for n in range(1, 13)},
    *{f"V6.3.{n}" for n in range(1, 5)},
    "V6.3.8",
    *{f"V6.4.{n}" for n in range(1, 5)},
    *{f"V6.5.{n}" for n in range(1, 6)},
    *{f"V6.6.{n}" for n in range(1, 4)},
    *{f"V6.8.{n}" for n in range(1, 5)},
    *{f"V7.1.{n}" for n in range(1, 4)},
    *{f"V7.2.{n}" for n in range(1, 5)},
    *{f"V7.3.{n}" for n in range(1, 3)},
    *{f"V7.4.{n}" for n in range(1, 6)},
    *{f"V7.5.{n}" for n in range(1, 3)},
    *{f"V7.6.{n}" for n in range(1, 3)},
    *{f"V9.1.{n}" for n in range(1, 4)},
    *{f"V9.2.{n}" for n in range(1, 5)},
}


def rows(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match is None:
            continue
        requirement, shown_by = match.groups()
        assert requirement not in found, f"{requirement}: two rows"
        found[requirement] = shown_by.strip()
    return found


@cache
def defined_tests(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text())
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    )


def problems(shown_by: str) -> list[str]:
    """What is wrong with one row's last cell (nothing: [])."""
    if shown_by.startswith(REASONS):
        reason = shown_by.split(":", 1)[1].strip()
        return [] if reason else [f"{shown_by!r}: a reason without its why"]
    wrong = []
    for node in (part.strip() for part in shown_by.split(",")):
        match = NODE.match(node)
        if match is None:
            wrong.append(f"{node!r}: neither a test node id nor a reason")
        elif not (ROOT / match[1]).is_file():
            wrong.append(f"{node}: no such file")
        elif match[2] not in defined_tests(match[1]):
            wrong.append(f"{node}: no such test")
    return wrong


def test_every_requirement_has_one_row() -> None:
    assert set(rows(TABLE.read_text())) == LEVEL_2


def test_every_row_names_tests_that_exist_or_says_why_not() -> None:
    wrong = {
        requirement: found
        for requirement, shown_by in rows(TABLE.read_text()).items()
        if (found := problems(shown_by))
    }
    assert wrong == {}


def test_a_row_naming_nothing_or_a_missing_test_is_caught() -> None:
    assert problems("") != []
    assert problems("n/a:") != []
    assert problems("tests/unit/test_security_table.py::test_nothing_of_this_name") != []
    assert problems("tests/unit/no_such_file.py::test_x") != []
    assert problems("see the code") != []
    assert problems("tests/unit/test_security_table.py::test_every_requirement_has_one_row") == []
    assert problems("pending: passkeys/TOTP") != []  # issue 65 built them: no row waits
