"""lib/ in layers (ADR 0026): a lib package imports only packages of lower layers, and no
module of lib imports one that imports it back (imports under TYPE_CHECKING count too:
a circle for the type checker is a circle for the reader)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# lowest first; a package (or top-level module) of lib/ may import those of lower layers
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer.split())
    for layer in (
        "keyring",
        "errors registry redact crypto pb pooler backoff settings_sources",
        "tracing config slo secret_settings",
        "logging metrics",
        "resilience mail relay pubsub storage forwarding redis_client",
        "auth db",
        "http",
        "grpc erasure",
        "clients",
        "runner",
    )
)
LAYER_OF = {name: level for level, layer in enumerate(LAYERS) for name in layer}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def lib_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / "lib").rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The lib modules `name` imports (`from lib.x import y` names lib.x.y when a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    modules = lib_modules()
    known = set(modules) - {"lib"}  # `from lib import tracing` imports lib.tracing
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else module


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_of_lib_imports_one_that_imports_it_back() -> None:
    found = cycles(graph())
    assert not found, "import cycles in lib/: " + "; ".join(" <-> ".join(c) for c in found)


def test_every_lib_package_has_a_layer() -> None:
    packages = {package_of(m) for m in lib_modules()} - {"lib"}
    assert packages <= LAYER_OF.keys(), sorted(packages - LAYER_OF.keys())


def test_lib_packages_import_only_lower_layers() -> None:
    wrong = sorted(
        f"{module} imports {target} ({package_of(module)} may not import {package_of(target)})"
        for module, targets in graph().items()
        for target in targets
        if package_of(module) != package_of(target)
        and package_of(module) != "lib"
        and LAYER_OF.get(package_of(target), 99) >= LAYER_OF.get(package_of(module), -1)
    )
    assert not wrong, "\n".join(wrong)


def test_the_checks_catch_a_planted_circle() -> None:
    planted = {"lib.a.x": {"lib.b.y"}, "lib.b.y": {"lib.a.z"}, "lib.a.z": {"lib.a.x"}}
    assert cycles(planted) == [["lib.a.x", "lib.a.z", "lib.b.y"]]
    # today's graph plus keys -> middleware (the circle issue 54 removed) is caught
    edges = graph()
    edges["lib.http.keys"] = edges["lib.http.keys"] | {"lib.http.middleware"}
    assert any("lib.http.keys" in c and "lib.http.middleware" in c for c in cycles(edges))
