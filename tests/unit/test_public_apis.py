"""lib/, services/, codegen/ and the generated code use their libraries' public APIs only
(issue 38, ADR 0020): a team that copies them can upgrade every dependency.

The scan fails naming file:line for
- an attribute `x._name` where `_name` is defined nowhere in this repository (so it is
  another library's private attribute: asyncpg's `_con`, aiohttp's `_make_server`, ...);
- an import from a module whose dotted path has a private part, or of a private name
  from another library (`from aiohttp.web_protocol import _ErrInfo`);
- `sys._getframe` (frame inspection);
- an assignment to another library's attribute (`aiomysql.connection.x = ...`, setattr on
  an imported module) or to any object's `__class__`.
tools/ is held to the same rules, except the dev-only entries of tools/private_apis.toml,
each with its reason.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ("lib", "services", "codegen", "observability")
FIRST_PARTY = {"lib", "services", "codegen", "tools", "observability", "tests", "bench"}
ALLOWED_FILE = ROOT / "tools" / "private_apis.toml"
# underscore names that are documented public API of the standard library
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_field_defaults", "_make", "_exit"}


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def definitions(tree: ast.Module) -> set[str]:
    """The underscore names a module defines: functions, classes, variables, attributes it
    assigns, parameters, imported aliases and its classes' __slots__."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[-1])
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
        ):
            names |= {
                c.value
                for c in ast.walk(node.value)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            }
    return {n for n in names if private(n)}


@cache
def defined_here() -> frozenset[str]:
    """Every underscore name the code under scan defines (tests and bench/ excluded: a
    test may name another library's internals in a string or a fake)."""
    names: set[str] = set()
    for path in python_files(*RUNTIME, "tools"):
        names |= definitions(ast.parse(path.read_text(), str(path)))
    return frozenset(names)


def third_party_names(tree: ast.Module) -> set[str]:
    """The names a module binds to another library's modules by importing them."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top not in FIRST_PARTY and top not in sys.stdlib_module_names:
                    bound.add(alias.asname or top)
    return bound


def root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def findings(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), str(path))
    where = path.relative_to(ROOT).as_posix()
    libraries = third_party_names(tree)
    ours = defined_here() | definitions(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Attribute):
            if node.attr == "_getframe":
                yield f"{where}:{line}: frame inspection (sys._getframe)"
            elif private(node.attr) and node.attr not in ours | PUBLIC_UNDERSCORE:
                yield f"{where}:{line}: another library's private attribute .{node.attr}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top = node.module.split(".")[0]
            if top in FIRST_PARTY:
                continue
            if any(private(part) for part in node.module.split(".")):
                yield f"{where}:{line}: import from a private module {node.module}"
            for alias in node.names:
                if private(alias.name):
                    yield f"{where}:{line}: import of a private name {node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] not in FIRST_PARTY and any(private(part) for part in parts):
                    yield f"{where}:{line}: import of a private module {alias.name}"
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if not isinstance(target, ast.Attribute):
                    continue
                if target.attr == "__class__":
                    yield f"{where}:{line}: assignment to __class__"
                elif root_name(target) in libraries:
                    yield f"{where}:{line}: assignment to another library's attribute"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("setattr", "delattr")
            and node.args
            and root_name(node.args[0]) in libraries
        ):
            yield f"{where}:{line}: {node.func.id} on another library's module"


def allowed() -> dict[str, str]:
    """tools/private_apis.toml: `"tools/x.py: what" = "why"`, dev-only exceptions."""
    entries: dict[str, str] = tomllib.loads(ALLOWED_FILE.read_text())["allowed"]
    return entries


@pytest.mark.parametrize("folder", RUNTIME)
def test_the_runtime_uses_public_apis_only(folder: str) -> None:
    found = [f for path in python_files(folder) for f in findings(path)]
    assert not found, "\n".join(found)


def test_tools_exceptions_are_listed_with_a_reason() -> None:
    entries = allowed()
    found = {re.sub(r":\d+:", ":", f) for path in python_files("tools") for f in findings(path)}
    unlisted = sorted(found - entries.keys())
    assert not unlisted, "not in tools/private_apis.toml:\n" + "\n".join(unlisted)
    stale = sorted(entries.keys() - found)
    assert not stale, "tools/private_apis.toml lists what the code no longer does: " + str(stale)
    assert all(reason.strip() for reason in entries.values())


SAMPLES = {
    "import asyncpg\nasync def f(pool):\n    return pool._queue\n": "private attribute ._queue",
    "from aiohttp.web_protocol import _ErrInfo\n": "private name aiohttp.web_protocol._ErrInfo",
    "from opentelemetry.sdk.trace._internal import x\n": "private module",
    "import sys\nframe = sys._getframe(2)\n": "frame inspection",
    "import aiomysql.connection\naiomysql.connection.escape = str\n": "another library's attr",
    "import aiomysql\nsetattr(aiomysql, 'x', 1)\n": "setattr on another library",
    "def f(server):\n    server.__class__ = object\n": "assignment to __class__",
}


@pytest.mark.parametrize("source", SAMPLES, ids=list(SAMPLES.values()))
def test_the_scan_catches(source: str, tmp_path: Path) -> None:
    path = ROOT / "var" / f"scan_sample_{abs(hash(source))}.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(source)
    try:
        assert list(findings(path)), f"not caught: {SAMPLES[source]}"
    finally:
        path.unlink()


def test_the_scan_passes_public_code(tmp_path: Path) -> None:
    path = ROOT / "var" / "scan_sample_public.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        "import collections\nclass A:\n    __slots__ = ('_own',)\n"
        "    def __init__(self):\n"
        "        self._own = collections.namedtuple('P', 'x')(1)._asdict()\n"
    )
    try:
        assert not list(findings(path))
    finally:
        path.unlink()
