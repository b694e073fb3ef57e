"""lib/, services/, codegen/ and the generated code use their libraries' public APIs only
(issue 38, ADR 0020): a team that copies them can upgrade every dependency.

The scan fails naming file:line for
- an attribute `x._name` where `_name` is defined nowhere in this repository (so it is
  another library's private attribute: asyncpg's `_con`, aiohttp's `_make_server`, ...);
- an import from a module whose dotted path has a private part, or of a private name
  from another library (`from aiohttp.web_protocol import _ErrInfo`);
- `sys._getframe` (frame inspection);
- an assignment to another library's attribute (`aiomysql.connection.x = ...`, setattr on
  an imported module), also through a name imported from it (`from mutmut.mutation import
  file_mutation; file_mutation.f = ...`), or to any object's `__class__`;
- `getattr(x, "_name")` (and hasattr, setattr, delattr) of another library's private name;
- a subclass of another library's class that defines a private method (an override of
  its internals: the library may rename or stop calling it);
- a patch that writes the name it replaces: `obj.attr` read and then assigned in the same
  function, on anything but `self`/`cls` (save the original, install a wrapper).
tools/ is held to the same rules, with no exception (the last one, a mutmut wrapper, went
with ADR 0017's update of 2026-11-27).
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("lib", "services", "codegen", "observability", "tools")
FIRST_PARTY = {"lib", "services", "codegen", "tools", "observability", "tests", "bench"}
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
    for path in python_files(*CHECKED):
        names |= definitions(ast.parse(path.read_text(), str(path)))
    return frozenset(names)


def third_party(module: str) -> bool:
    top = module.split(".")[0]
    return top not in FIRST_PARTY and top not in sys.stdlib_module_names


def third_party_names(tree: ast.Module) -> set[str]:
    """The names a module binds to another library's modules, or to what it imports from
    them (`from mutmut.mutation import file_mutation`, `from aiohttp import web`)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if third_party(alias.name):
                    bound.add(alias.asname or alias.name.split(".")[0])
        elif (
            isinstance(node, ast.ImportFrom) and node.level == 0 and third_party(node.module or "")
        ):
            bound |= {alias.asname or alias.name for alias in node.names}
    return bound


def root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def imported_from(tree: ast.Module) -> dict[str, str]:
    """Each name a module binds by importing another library, to the dotted path it names."""
    paths: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if third_party(alias.name):
                    name = alias.asname or alias.name.split(".")[0]
                    paths[name] = alias.name if alias.asname else name
        elif (
            isinstance(node, ast.ImportFrom) and node.level == 0 and third_party(node.module or "")
        ):
            for alias in node.names:
                paths[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return paths


def resolve(dotted: str) -> object:
    """The object a dotted path names (the longest importable module, then attributes)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            found = getattr(found, part)
        return found
    raise ImportError(dotted)


def private_overrides(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, name) of each private method a subclass defines that its library base class
    (resolved by importing it) already has: an override of the library's internals."""
    paths = imported_from(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        bases = []
        for base in node.bases:
            root = root_name(base)
            if root in paths:
                dotted = ast.unparse(base).replace(root, paths[root], 1)
                bases.append(resolve(dotted))
        for item in node.body:
            if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if private(item.name) and any(hasattr(base, item.name) for base in bases):
                yield item.lineno, item.name


def replaced_names(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, target) of each `obj.attr = wrapper` in a function that also reads
    `obj.attr` and defines `wrapper` (a def or a lambda), `obj` not self or cls: the
    original saved and a wrapper written in its place."""
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        nested = {
            node.name
            for node in ast.walk(function)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node is not function
        }
        read = {
            ast.unparse(node)
            for node in ast.walk(function)
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)
        }
        for node in ast.walk(function):
            if not isinstance(node, ast.Assign):
                continue
            wrapper = isinstance(node.value, ast.Lambda) or (
                isinstance(node.value, ast.Name) and node.value.id in nested
            )
            for target in node.targets:
                if (
                    wrapper
                    and isinstance(target, ast.Attribute)
                    and root_name(target) not in ("self", "cls", None)
                    and ast.unparse(target) in read
                ):
                    yield node.lineno, ast.unparse(target)


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
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and private(node.args[1].value)
            and node.args[1].value not in ours | PUBLIC_UNDERSCORE
        ):
            name = node.args[1].value
            yield f"{where}:{line}: another library's private attribute {node.func.id} {name}"
    for line, name in private_overrides(tree):
        yield f"{where}:{line}: a subclass overriding another library's private method {name}"
    for line, target in replaced_names(tree):
        yield f"{where}:{line}: a patch writing the name it replaces {target}"


@pytest.mark.parametrize("folder", CHECKED)
def test_the_code_uses_public_apis_only(folder: str) -> None:
    found = [f for path in python_files(folder) for f in findings(path)]
    assert not found, "\n".join(found)


SAMPLES = {
    "import asyncpg\nasync def f(pool):\n    return pool._queue\n": "private attribute ._queue",
    "from aiohttp.web_protocol import _ErrInfo\n": "private name aiohttp.web_protocol._ErrInfo",
    "from opentelemetry.sdk.trace._internal import x\n": "private module",
    "import sys\nframe = sys._getframe(2)\n": "frame inspection",
    "import aiomysql.connection\naiomysql.connection.escape = str\n": "another library's attr",
    "import aiomysql\nsetattr(aiomysql, 'x', 1)\n": "setattr on another library",
    "def f(server):\n    server.__class__ = object\n": "assignment to __class__",
    "def f(cursor):\n    return getattr(cursor, '_result', None)\n": "getattr of a private name",
    "from aiohttp import web\nclass P(web.RequestHandler):\n    def _handle_request(self):\n"
    "        return None\n": "a subclass overriding a private method",
    "from mutmut.mutation import file_mutation\nfile_mutation.function_arrangement = None\n": (
        "a patch through from X import Y"
    ),
    "def install(runner):\n    old = runner.collect_stats\n    def new(self):\n"
    "        return old(self)\n    runner.collect_stats = new\n": "a patch writing its name",
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
