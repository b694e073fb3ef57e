"""Tests hold at any minute: no clock read and no token built when a test module is
imported or collected (module level, class bodies, decorators such as parametrize,
default arguments). A token made at import expires before a test that runs late in a
long run; a time read then is stale. Function bodies and lambdas run with the test."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
# the clock, and what builds or signs a token from it (tests/ helpers included)
CLOCK = {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "now", "utcnow",
         "today", "now_s", "wall_ms", "loop_time"}  # fmt: skip
TOKENS = {"issue", "token", "bearer", "signed", "good_claims", "auth"}


def called_name(call: ast.Call) -> str:
    func = call.func
    if call.args and isinstance(func, ast.Name) and func.id == "time":
        return "datetime.time"  # time(6, 45): a time of day, not the clock
    if isinstance(func, ast.Attribute):
        if func.attr == "encode" and isinstance(func.value, ast.Name) and func.value.id == "jwt":
            return "jwt.encode"  # str.encode is not a token
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def import_time_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node evaluated when `node` (a module or class body) runs at import."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            for part in [*child.decorator_list, *child.args.defaults, *child.args.kw_defaults]:
                if part is not None:
                    yield from walk_eager(part)
        elif isinstance(child, ast.ClassDef):
            for part in [*child.decorator_list, *child.bases]:
                yield from walk_eager(part)
            yield from import_time_nodes(child)
        else:
            yield from walk_eager(child)


def walk_eager(node: ast.AST) -> Iterator[ast.AST]:
    """`node` and what it evaluates now (a lambda's body runs later)."""
    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, ast.Lambda):
            yield from walk_eager(child)


def import_time_calls(source: str) -> list[tuple[int, str]]:
    found = []
    for node in import_time_nodes(ast.parse(source)):
        if isinstance(node, ast.Call) and called_name(node) in CLOCK | TOKENS | {"jwt.encode"}:
            found.append((node.lineno, called_name(node)))
    return sorted(found)


def test_no_test_module_reads_the_clock_or_builds_a_token_at_import() -> None:
    offenders = [
        f"{path.relative_to(TESTS.parent)}:{line}: {name}() at import"
        for path in sorted(TESTS.rglob("*.py"))
        for line, name in import_time_calls(path.read_text())
    ]
    assert not offenders, "\n".join(offenders)


def test_the_scan_finds_each_kind_and_spares_what_runs_later() -> None:
    source = """
import time
STARTED = time.time()
CASES = [("exp", now_s() + 900)]
LATER = [lambda: now_s()]

@pytest.mark.parametrize("t", [token(Role.ADMIN)])
def test_x(t, default=datetime.now(UTC)):
    return time.time(), signer.issue(1, "ADMIN", True)

class TestY:
    HEADERS = bearer()
    FORGED = jwt.encode({}, "k")
    TEXT = "a".encode()
    WAKES = time(6, 45)

    def test_z(self):
        return time.monotonic()
"""
    assert import_time_calls(source) == [
        (3, "time"), (4, "now_s"), (7, "token"), (8, "now"), (12, "bearer"), (13, "jwt.encode"),
    ]  # fmt: skip
