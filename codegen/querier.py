"""What the options `emit_querier` and `omit_unused_models` write, read from the generated
query modules themselves, so that every function a module holds (a sorted one, an `iter_`
one) is covered alike, whichever part of the plugin wrote it."""

from __future__ import annotations

import ast
import copy

from .emit import MODULE, render
from .errors import CodegenError

CLASS = "Querier"
_OBJECT = ast.Name("object")


def querier_class(module: str, source: str) -> str:
    """A class holding the connection, with a method per function of `source` (one taking
    `conn` first): the same parameters and result, sync where the function is."""
    tree = ast.parse(source)
    if any(_defines(node, CLASS) for node in tree.body):
        raise CodegenError(f"{module}: emit_querier: the module already has a name {CLASS}")
    functions = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _takes_conn(node)
    ]
    if not functions:
        return ""
    conn = functions[0].args.args[0].annotation
    methods = "\n".join(_method(node) for node in functions)
    return render(MODULE, "querier", set(), name=CLASS, conn=ast.unparse(conn or _OBJECT),
                  methods=methods)  # fmt: skip


def _method(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The method calling `node` on `self.conn` with every parameter it takes."""
    rest = node.args.args[1:]
    params = copy.copy(node.args)
    params.args = rest
    args = ["self.conn", *(a.arg for a in rest)]
    args += [f"{a.arg}={a.arg}" for a in node.args.kwonlyargs]
    result = ast.unparse(node.returns) if node.returns else "None"
    awaited = isinstance(node, ast.AsyncFunctionDef) and not _yields(node)
    section = ("method async" if awaited else "method") + (" void" if result == "None" else "")
    signature = ", ".join(filter(None, ["self", ast.unparse(params)]))
    return render(MODULE, section, set(), name=node.name, params=signature, result=result,
                  args=", ".join(args))  # fmt: skip


def models_used(sources: list[str]) -> set[str]:
    """The names of models.py the query modules use (`models.X`, `from .models import X`)."""
    used: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "models":
                    used.add(node.attr)
            elif isinstance(node, ast.ImportFrom) and node.module == "models" and node.level:
                used.update(alias.name for alias in node.names)
    return used


def _takes_conn(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return bool(node.args.args) and node.args.args[0].arg == "conn"


def _yields(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Yield | ast.YieldFrom) for n in ast.walk(node))


def _defines(node: ast.stmt, name: str) -> bool:
    if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        return node.name == name
    if isinstance(node, ast.Import | ast.ImportFrom):
        return any((a.asname or a.name) == name for a in node.names)
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(t, ast.Name) and t.id == name for t in targets)
    return False
