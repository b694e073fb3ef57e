"""Which services a test file exercises: `make test svc=X` (pytest --svc=X) runs the files
selected for X (tests/conftest.py), and tests/unit/test_selection.py proves none is missed.

A file is selected for a service when
- its name names it (`test_users_profiles.py`);
- it, or a module of tests/ it imports (followed through every import), imports
  `services.<svc>`, starts it (`services/<svc>`) or names it as a string ("users", the
  name every stack, registry lookup and URL prefix is built from);
- it, or such a module, walks lib/registry.py's services (`registry.MICROSERVICES`,
  `gateway_services()`, `built_services()`, `scaled()`): every service;
- it declares so: a module-level `EXERCISES = ("users", "chat")`, `EXERCISES = "all"` for
  a test that reaches every service in a way none of the above sees, or `EXERCISES = ()`
  for one that exercises none although a module it imports names some (the scaffold's
  test: throwaway services). A declaration is the whole answer: the rules above are not
  applied to a file that declares.
A file selected for no service tests lib/, tools/ or codegen/ only (`make test` runs it):
tests/unit/test_selection.py holds it to that: no code of it (docstrings and comments
aside) may name a service unless it declares what it exercises (`EXERCISES = ()`: none,
the name is only data, as a path `/v1/orders` in a routing test).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALL = "all"
DECLARATION = "EXERCISES"
EVERY_SERVICE = re.compile(
    r"\bregistry\.(MICROSERVICES\b|gateway_services\(|built_services\(|scaled\()"
)


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _module_path(dotted: str, root: Path) -> Path | None:
    """The file of a `tests.` module (a package: its __init__.py), if it exists."""
    base = root.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(path: Path, root: Path) -> set[Path]:
    """The modules of tests/ that `path` imports (a `from tests.x import name` may name a
    module too)."""
    found: set[Path] = set()
    for node in ast.walk(_tree(path)):
        dotted: list[str] = []
        if isinstance(node, ast.Import):
            dotted = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            dotted = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        for name in dotted:
            if name.split(".")[0] == "tests" and (module := _module_path(name, root)) is not None:
                found.add(module)
    return found


def reached(path: Path, root: Path = ROOT) -> list[Path]:
    """`path` and every module of tests/ it imports, directly or through another."""
    seen: dict[Path, None] = {path.resolve(): None}
    todo = [path.resolve()]
    while todo:
        for module in _imported(todo.pop(), root):
            resolved = module.resolve()
            if resolved not in seen:
                seen[resolved] = None
                todo.append(resolved)
    return list(seen)


def declared(path: Path) -> set[str]:
    """The services a module-level `EXERCISES = ...` names ("all" as ALL)."""
    for node in _tree(path).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == DECLARATION for t in node.targets)
        ) or (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == DECLARATION
        ):
            value = ast.literal_eval(node.value) if node.value is not None else ()
            return {value} if isinstance(value, str) else set(value)
    return set()


def exercised(path: Path, services: Iterable[str], root: Path = ROOT) -> set[str]:
    """The services (of `services`) whose selection runs the test file `path`."""
    names = list(services)
    if has_declaration(path):
        wanted = declared(path)
        return set(names) if ALL in wanted else wanted & set(names)
    chosen = {s for s in names if re.search(rf"(^|_){s}(_|\.py$)", path.name)}
    for module in reached(path, root):
        text = module.read_text()
        if EVERY_SERVICE.search(text):
            return set(names)
        chosen |= {s for s in names if re.search(rf"\bservices[./]{s}\b|[\"']{s}[\"']", text)}
    return chosen


def _code_words(path: Path) -> str:
    """The string literals and identifiers of `path`'s code, docstrings left out."""
    tree = _tree(path)
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    words: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            words.append(node.value)
        elif isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
    return "\n".join(words)


def named_in_code(path: Path, services: Iterable[str], root: Path = ROOT) -> set[str]:
    """The services whose name stands alone (not inside another word or a hyphenated name
    such as the issuer `fixup-users`) in the code of `path` or of a tests/ module it reaches."""
    texts = [_code_words(module) for module in reached(path, root)]
    return {s for s in services if any(re.search(rf"(?<![\w-]){s}(?![\w-])", t) for t in texts)}


def has_declaration(path: Path) -> bool:
    return any(
        (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == DECLARATION for t in node.targets)
        )
        or (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == DECLARATION
        )
        for node in _tree(path).body
    )
