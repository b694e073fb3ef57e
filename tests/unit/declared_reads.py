"""What a handler reads from a request, compared with what its `@operation` declares.

The handler, and every function of services/ and lib/http/ it calls (by a name its module,
its closure or an argument default resolves: `inspect.getclosurevars`), are read as source
(ast). A read is: `X.query.get("n")`, `X.query["n"]` (also through a local bound to
`X.query`), the same on `X.headers` and `"n" in X.headers`; `parse_body(request, Model)`,
`parse_query/parse_list(request, Model)`, `X.multipart()`; `match_info[...] == "me"`.
Authorization and Origin are the credentials' own headers (the security schemes and the
cookie rule of docs/api.md), read for every authenticated caller, so not parameters.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from lib.http.openapi import declared

CREDENTIAL_HEADERS = frozenset({"authorization", "origin"})
# the readers of a declared model, and the position of the model among their arguments
QUERY_READERS = {"parse_query": 1, "parse_list": 2}
BODY_READERS = {"parse_body": 1}
WALKED = ("services.", "lib.http.")
UNKNOWN = object()


@dataclass
class Reads:
    query: set[str] = field(default_factory=set)
    headers: set[str] = field(default_factory=set)
    query_models: list[Any] = field(default_factory=list)
    body_models: list[Any] = field(default_factory=list)
    multipart: bool = False
    me: bool = False


def _source_tree(func: Callable[..., Any]) -> ast.AST | None:
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError):
        return None


def _scope(func: Callable[..., Any]) -> dict[str, Any]:
    names: dict[str, Any] = dict(func.__globals__)
    closure = inspect.getclosurevars(func)
    names.update(closure.globals)
    names.update(closure.nonlocals)
    for name, parameter in inspect.signature(func).parameters.items():
        if parameter.default is not inspect.Parameter.empty:
            names[name] = parameter.default
    return names


def _resolve(node: ast.AST, scope: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        return scope.get(node.id, UNKNOWN)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, scope)
        return UNKNOWN if base is UNKNOWN else getattr(base, node.attr, UNKNOWN)
    return UNKNOWN


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_mapping(node: ast.AST, attr: str, aliases: set[str]) -> bool:
    """`X.<attr>` or a local name bound to one."""
    if isinstance(node, ast.Attribute) and node.attr == attr:
        return True
    return isinstance(node, ast.Name) and node.id in aliases


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _aliases(tree: ast.AST) -> dict[str, set[str]]:
    """Local names bound to `X.query` / `X.headers`."""
    aliases: dict[str, set[str]] = {"query": set(), "headers": set()}
    for node in ast.walk(tree):
        value = getattr(node, "value", None)
        if (
            isinstance(node, ast.Assign)
            and isinstance(value, ast.Attribute)
            and value.attr in aliases
        ):
            aliases[value.attr] |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return aliases


def _key_read(node: ast.AST, kind: str, aliases: set[str]) -> str | None:
    """The literal name `node` reads from `X.<kind>`: `[n]`, `.get(n)`, `n in`."""
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):  # not a write
        return _literal(node.slice) if _is_mapping(node.value, kind, aliases) else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
        getter = node.func.attr in {"get", "getall", "getone"}
        mapping = _is_mapping(node.func.value, kind, aliases)
        return _literal(node.args[0]) if getter and mapping else None
    if isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In):
        return _literal(node.left) if _is_mapping(node.comparators[0], kind, aliases) else None
    return None


def _reads_me(node: ast.AST) -> bool:
    """`X.match_info[...] == "me"`."""
    return (
        isinstance(node, ast.Compare)
        and isinstance(node.left, ast.Subscript)
        and _is_mapping(node.left.value, "match_info", set())
        and any(_literal(c) == "me" for c in node.comparators)
    )


def _read_one(tree: ast.AST, scope: dict[str, Any], reads: Reads) -> Iterator[Any]:
    """Record `tree`'s reads; yield what its calls resolve to (to walk next)."""
    aliases = _aliases(tree)
    for node in ast.walk(tree):
        for kind in ("query", "headers"):
            if (name := _key_read(node, kind, aliases[kind])) is not None:
                getattr(reads, kind).add(name)
        reads.me = reads.me or _reads_me(node)
        if not isinstance(node, ast.Call):
            continue
        name = _called_name(node)
        if name == "multipart":
            reads.multipart = True
        elif (at := (QUERY_READERS | BODY_READERS).get(name)) is not None:
            models = reads.query_models if name in QUERY_READERS else reads.body_models
            given = [k.value for k in node.keywords if k.arg == "model"] + node.args[at : at + 1]
            models.append(_resolve(given[0], scope) if given else UNKNOWN)
        else:
            yield _resolve(node.func, scope)


def reads_of(*roots: Callable[..., Any]) -> Reads:
    """Everything `roots` and the functions they call read."""
    reads, seen = Reads(), set()
    starts = [inspect.unwrap(root) for root in roots]
    todo: list[Any] = list(starts)
    while todo:
        func = inspect.unwrap(todo.pop())
        if not inspect.isfunction(func) or func in seen:
            continue
        if func not in starts and not func.__module__.startswith(WALKED):
            continue
        seen.add(func)
        if (tree := _source_tree(func)) is not None:
            todo.extend(_read_one(tree, _scope(func), reads))
    return reads


def undeclared(handler: Callable[..., Any]) -> list[str]:
    """What `handler` reads and its operation does not declare, and the reverse."""
    op = declared(handler)
    assert op is not None
    roots = [handler] + ([op.access.authenticate] if op.access.authenticate else [])
    reads = reads_of(*roots)
    problems = []
    declared_query = set(op.query.model_fields) if op.query is not None else set()
    for name in sorted(reads.query - declared_query):
        problems.append(f"reads query parameter {name!r}, not declared")
    for model in reads.query_models:
        if op.query is None or model not in (UNKNOWN, op.query):
            problems.append(f"parses the query as {model!r}, declared {op.query!r}")
    if op.query is not None and not reads.query_models:
        for name in sorted(declared_query - reads.query):
            problems.append(f"declares query parameter {name!r}, never read")
    declared_headers = {h.name.lower() for h in op.headers}
    declared_headers |= {"if-match"} if op.if_match else set()
    declared_headers |= {"idempotency-key"} if op.idempotent else set()
    read_headers = {h.lower() for h in reads.headers} - CREDENTIAL_HEADERS
    for name in sorted(read_headers - declared_headers):
        problems.append(f"reads header {name!r}, not declared")
    for name in sorted({h.name.lower() for h in op.headers} - read_headers):
        problems.append(f"declares header {name!r}, never read")
    for model in reads.body_models:
        if op.body is None or model not in (UNKNOWN, op.body):
            problems.append(f"parses a JSON body as {model!r}, declared {op.body!r}")
    if op.body is not None and not reads.body_models:
        problems.append("declares a JSON body, never parsed")
    if reads.multipart != (op.form is not None):
        problems.append(f"multipart read: {reads.multipart}, form declared: {op.form}")
    if reads.me != op.me:
        problems.append(f"`me` in the path: read {reads.me}, declared {op.me}")
    return problems


def operations(app: web.Application) -> Iterator[tuple[str, Callable[..., Any]]]:
    for route in app.router.routes():
        documented = declared(route.handler) is not None and route.method != "HEAD"
        if documented and route.resource is not None:
            yield f"{route.method} {route.resource.canonical}", route.handler
