"""The comparison table of codegen/README.md claims nothing no test shows: every ✔ in the
plugin's column names, in the table's last column, tests that exist (a test file and a test
function in it, as pytest's node id), and every other plugin's version is dated."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "codegen" / "README.md"
NODE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[[^\]`]*\])?`")


def table() -> tuple[list[str], list[list[str]]]:
    """The header and rows of the table under `## Compared`."""
    text = README.read_text()
    section = text.split("\n## Compared\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    rows = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]
    return rows[0], [row for row in rows[2:]]


def defined_tests(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_check_of_ours_names_tests_that_exist() -> None:
    header, rows = table()
    ours, tests = header.index("sqlc-gen-fixup"), header.index("tests")
    assert len(rows) >= 15
    checked = 0
    for row in rows:
        assert len(row) == len(header), row[0]
        nodes = NODE.findall(row[tests])
        if "✔" not in row[ours]:
            assert not nodes, f"{row[0]}: tests named for a feature not claimed"
            continue
        assert nodes, f"{row[0]}: a ✔ of ours without a test"
        for path, name in nodes:
            assert (ROOT / path).is_file(), f"{row[0]}: no file {path}"
            assert name in defined_tests(path), f"{row[0]}: no test {name} in {path}"
        checked += 1
    assert checked >= 15


def test_the_rows_the_comparison_promises_are_there() -> None:
    _, rows = table()
    features = {row[0] for row in rows}
    promised = {
        "engines", "drivers", "model types", "sort variants", "batch", "copyfrom", "embeds",
        "nullability checked live", "JSON", "enums", "querier classes", "runtime weight",
    }  # fmt: skip
    assert promised <= features


def test_each_compared_version_is_dated() -> None:
    header, _ = table()
    text = README.read_text().split("\n## Compared\n", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"compared on \d{4}-\d{2}-\d{2}", text)
    for name in ("sqlc-gen-python", "sqlc-gen-better-python", "scythe"):
        column = next(h for h in header if h.startswith(name))
        assert re.fullmatch(rf"{name} \d+\.\d+\.\d+", column), column
