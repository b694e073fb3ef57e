"""Who uses a service: `make remove-service`'s question before it takes a service out
(tools/new_service.py)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

# where code that may use a service lives (`dependents`); tests/ is not read: a service's
# tests beyond the ones `new` writes go with it by hand
CODE = ("services", "lib", "tools", "observability", "bench")
# the Kubernetes components, one folder a service; another's naming X (its network policy)
COMPONENTS = Path("deploy/k8s/services")
REGISTRY = Path("lib/registry.py")


def dependents(name: str, root: Path, owned: Iterable[Path]) -> list[str]:
    """What outside `name`'s own files (`owned`, absolute: new_service.owned_paths) uses it,
    each `path:line`: Python code of CODE that imports it (services.X, lib.clients.X,
    lib.pb.X), names it in a string of its own ("X", "services.X...", registry.get("X")), or
    is a module named X (its client, lib/clients/X.py); another entry of lib/registry.py
    naming it (its `breakers`); another service's Kubernetes component naming it."""
    owned = list(owned)
    found: list[str] = []
    for top in CODE:
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root)
            if "node_modules" in rel.parts or any(path.is_relative_to(o) for o in owned):
                continue
            if name in rel.with_suffix("").parts[1:]:
                found.append(str(rel))  # a module or package of its own: lib/clients/X.py
                continue
            text = path.read_text()
            if name in text:
                line = _Uses.first(name, rel, ast.parse(text))
                if line:
                    found.append(f"{rel}:{line}")
    word = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
    for path in sorted((root / COMPONENTS).glob("*/*")):
        if path.parent.name == name or not path.is_file():
            continue
        lines = path.read_text().splitlines()
        line = next((n for n, text in enumerate(lines, 1) if word.search(text)), 0)
        if line:
            found.append(f"{path.relative_to(root)}:{line}")
    return found


class _Uses(ast.NodeVisitor):
    """The first line of a module that uses service `name` (`dependents`)."""

    def __init__(self, name: str, rel: Path) -> None:
        self.name = name
        self.rel = rel
        self.lines: list[int] = []
        # a dotted or slashed path into the service: services.X.app, lib/clients/X.py
        self.path = re.compile(
            rf"(?:^|[./])(?:services|clients|pb|sql|migrations|proto)[./]{re.escape(name)}(?:[./]|$)"
        )

    @classmethod
    def first(cls, name: str, rel: Path, tree: ast.AST) -> int:
        uses = cls(name, rel)
        uses.visit(tree)
        return min(uses.lines, default=0)

    def _module(self, module: str, line: int) -> None:
        if self.path.search(f".{module}"):
            self.lines.append(line)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._module(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        package = list(self.rel.parent.parts)
        base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
        module = ".".join(p for p in (base, node.module or "") if p)
        for alias in node.names:
            self._module(f"{module}.{alias.name}", node.lineno)

    def visit_Call(self, node: ast.Call) -> None:
        own = (
            self.rel == REGISTRY
            and isinstance(node.func, ast.Name)
            and node.func.id == "Microservice"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == self.name
        )
        if not own:  # its own entry is what remove takes out; another's naming it is a use
            self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, str) and (value == self.name or self.path.search(value)):
            self.lines.append(node.lineno)
