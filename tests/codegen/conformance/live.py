"""The live conformance run, on SQLite, PostgreSQL and MariaDB alike: every query function
of a generated package is called on database states built to make each column NULL if it
can (no row at all; one table's rows alone, so that every outer join misses; NOT NULL
columns set to ordinary, zero/empty and out-of-domain values, nullable ones NULL or set),
with arguments of the types its signature annotates (so each parameter type is executed;
a sorted query once per key and direction, from the start and after a position). A field
the code annotates never-NULL that comes back None is a lie; so is an argument of the
annotated type the driver refuses, and a function no state lets run. Each is named with
its query and column, its witness (the state's INSERTs, the arguments, the statement)
written under test-artifacts/conformance/ (or the directory given) for replay.

The engine's part is a `Database` (live_sqlite.py, live_pg.py, live_mysql.py): its
tables, a state's rows inserted in a transaction rolled back after, a call in a savepoint
rolled back after, and the exceptions by which the engine refuses a state or a value."""

from __future__ import annotations

import datetime
import enum
import importlib
import inspect
import ipaddress
import math
import shutil
import sys
import types
import typing
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import asyncpg
import yaml

from codegen.typeslock import schema_paths
from tools.sqlc_run import engine_of_config, sql_dir

ROOT = Path(__file__).resolve().parents[3]
WITNESSES = ROOT / "test-artifacts" / "conformance"


def configs(engine: str, *plugin_tests: str) -> list[Path]:
    """The sqlc.yaml of each named test project of the plugin (tests/codegen/<name>), then
    of each of the repository's databases on `engine` (sql/)."""
    databases = sorted(p.parent.name for p in (ROOT / "sql").glob("*/sqlc.yaml"))
    return [
        *(ROOT / "tests" / "codegen" / name / "sqlc.yaml" for name in plugin_tests),
        *(sql_dir(db) / "sqlc.yaml" for db in databases if engine_of_config(db) == engine),
    ]


@dataclass(frozen=True)
class Values:
    """One kind of input: what an INTEGER, REAL, TEXT, BLOB column or argument holds."""

    name: str
    integer: int
    real: float
    text: str
    blob: bytes
    rows: int = 1  # rows per table (two: Inf beside -Inf, whose sum is NaN)
    filled: bool = False  # nullable columns set too (else NULL)
    aware: bool = False  # datetime arguments in UTC (else naive)
    infinite: bool = True  # float arguments may be infinite


ORDINARY = Values("ordinary", 1, 1.5, "2020-01-02", b"x")
FILLED = Values("filled", 1, 1.5, "2020-01-02", b"x", filled=True)
EMPTY = Values("zero", 0, 0.0, "", b"")
OUT_OF_DOMAIN = Values("out-of-domain", -1, float("inf"), "x", b"\xff", rows=2)
KINDS = (ORDINARY, FILLED, EMPTY, OUT_OF_DOMAIN)
DATE = datetime.date(2020, 1, 2)
DATETIME = datetime.datetime(2020, 1, 2, 3, 4, 5)


@dataclass
class State:
    name: str
    kind: Values
    inserts: list[str]


class Database(Protocol):
    """An engine's part of the run."""

    conn: Any
    aware: bool  # datetime arguments carry a time zone
    infinite: bool  # float arguments may be infinite

    def refuses(self, exc: Exception) -> bool:
        """Whether `exc` is the engine refusing a state (a constraint) or a value (out of a
        function's domain): the arguments were taken, nothing is judged."""
        ...

    def states(self) -> AsyncIterator[State]:
        """Each state inside a transaction, rolled back after."""
        ...

    async def call(self, func: Callable[..., Any], args: dict[str, Any]) -> Any:
        """`func(conn, **args)` (awaited when async) in a savepoint rolled back after."""
        ...


def subsets(tables: list[str]) -> Iterator[tuple[str, list[str], tuple[Values, ...]]]:
    """The tables each state fills and the kinds of values it is built with."""
    yield "no row", [], KINDS[:1]
    yield "every table", tables, KINDS
    for table in tables:
        yield f"only {table}", [table], KINDS


@dataclass
class Lie:
    query: str
    column: str
    witness: Path
    what: str = "annotated never-NULL, NULL"

    def __str__(self) -> str:
        return f"{self.query}: {self.column} {self.what} in {self.witness}"


def report(lies: list[Lie]) -> str:
    """Every lie with its witness, for the failure message."""
    return "\n\n".join(f"{lie}\n{lie.witness.read_text()}" for lie in lies)


@dataclass(frozen=True)
class Project:
    """A sqlc project's generated package, its query modules and its schema files."""

    package: str
    modules: list[str]
    schema: list[Path]

    @classmethod
    def of(cls, config: Path) -> Project:
        """The project of a sqlc.yaml whose output is a package of this repository."""
        sql = yaml.safe_load(config.read_text())["sql"][0]
        out = (config.parent / sql["codegen"][0]["out"]).resolve()
        modules = sorted(p.stem for p in out.glob("*.py") if p.stem not in ("__init__", "models"))
        package = ".".join(out.relative_to(ROOT).parts)
        return cls(package, modules, schema_paths(sql["schema"], config.parent))


def planted(package: str, into: Path, module: str, old: str, new: str) -> str:
    """A copy of the generated `package` under `into`, imported, `old` replaced by `new`
    in `module` (a lie planted); its name."""
    name = "planted_" + "".join(c if c.isalnum() else "_" for c in into.name)  # one a test
    shutil.copytree(ROOT.joinpath(*package.split(".")), into / name)
    path = into / name / f"{module}.py"
    text = path.read_text()
    assert old in text, f"nothing to plant in: {old!r}"
    path.write_text(text.replace(old, new, 1))
    sys.path.insert(0, str(into))
    try:
        importlib.import_module(name)
    finally:
        sys.path.remove(str(into))
    return name


# --- arguments -----------------------------------------------------------------------------


def _options(annotation: Any) -> list[Any]:
    """A union's members but None; [annotation] for anything else."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def argument(annotation: Any, kind: Values) -> Any:
    """A value of the annotated type, from `kind`."""
    options = _options(annotation)
    if not options:
        return None
    annotation = options[0]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return typing.get_args(annotation)[0]
    if origin in (list, Iterable):  # a slice, an array, a batch's items (empty: zero)
        item = argument(typing.get_args(annotation)[0], kind)
        return [] if kind is EMPTY and origin is list else [item]
    if origin is frozenset:  # a MySQL SET: the empty set is one of every SET's values
        return frozenset()
    if origin is tuple:
        return tuple(argument(a, kind) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        members = list(annotation)
        return members[-1] if kind is OUT_OF_DOMAIN else members[0]
    scalar = _scalar(annotation, kind)
    if scalar is None:
        scalar = _asyncpg_value(annotation, kind)
    if scalar is not None:
        return scalar
    hints = _fields(annotation)
    if hints:  # a params class, a composite type: built by keyword
        return annotation(**{n: argument(t, kind) for n, t in hints.items()})
    return {}  # JSON


def _scalar(annotation: Any, kind: Values) -> object | None:
    positive = max(kind.integer, 0)
    scalars: dict[Any, object] = {
        bool: kind.integer != 0,
        int: kind.integer,
        float: kind.real if kind.infinite or math.isfinite(kind.real) else -1.5,
        Decimal: Decimal(kind.integer),
        str: kind.text,
        bytes: kind.blob,
        datetime.datetime: DATETIME.replace(tzinfo=datetime.UTC) if kind.aware else DATETIME,
        datetime.date: DATE,
        datetime.time: DATETIME.time(),
        datetime.timedelta: datetime.timedelta(days=kind.integer),
        uuid.UUID: uuid.UUID(int=positive),
        ipaddress.IPv4Address: ipaddress.IPv4Address(positive),
        ipaddress.IPv6Address: ipaddress.IPv6Address(positive),
        ipaddress.IPv4Network: ipaddress.IPv4Network(positive),
        ipaddress.IPv6Network: ipaddress.IPv6Network(positive),
        ipaddress.IPv4Interface: ipaddress.IPv4Interface(positive),
        ipaddress.IPv6Interface: ipaddress.IPv6Interface(positive),
    }
    return scalars.get(annotation)


def _asyncpg_value(annotation: Any, kind: Values) -> object | None:
    """A value of asyncpg's own types (geometry, bit strings, ranges: empty of the zero
    kind, unbounded of the out-of-domain one)."""
    if typing.get_origin(annotation) is asyncpg.Range:
        if kind is EMPTY:
            return asyncpg.Range(empty=True)
        bound = argument(typing.get_args(annotation)[0], ORDINARY)
        return asyncpg.Range() if kind is OUT_OF_DOMAIN else asyncpg.Range(bound, None)
    values: dict[Any, object] = {
        asyncpg.BitString: asyncpg.BitString("1"),
        asyncpg.Point: asyncpg.Point(1, 2),
        asyncpg.Box: asyncpg.Box((3, 4), (1, 2)),
        asyncpg.Line: asyncpg.Line(1, 2, 3),
        asyncpg.LineSegment: asyncpg.LineSegment((1, 2), (3, 4)),
        asyncpg.Path: asyncpg.Path((1, 2), (3, 4)),
        asyncpg.Polygon: asyncpg.Polygon((1, 2), (3, 4), (5, 6)),
        asyncpg.Circle: asyncpg.Circle((1, 2), 3),
    }
    return values.get(annotation)


def _fields(cls: Any) -> dict[str, Any]:
    """The annotated fields of a row, params or composite class (dataclass, attrs,
    msgspec, pydantic alike); {} for anything else."""
    if not isinstance(cls, type) or issubclass(cls, enum.Enum) or cls.__module__ == "builtins":
        return {}
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):
        return {}
    return {n: t for n, t in hints.items() if not n.startswith("_") and n != "model_config"}


KEY_KINDS: dict[str, Any] = {
    "text": str, "int": int, "int64": int, "float": float, "decimal": Decimal,
    "time": datetime.datetime, "date": datetime.date, "uuid": uuid.UUID, "bool": bool,
}  # fmt: skip


def texts(kind: Values, row: int) -> list[str]:
    """The text of `kind`, then what a CHECK refusing it may take instead: a UUID's text,
    an email address."""
    suffix = str(row) if row else ""
    return [kind.text + suffix, str(uuid.UUID(int=max(kind.integer + row, 0))), f"a{suffix}@b.c"]


def calls(
    func: Callable[..., Any], module: ModuleType, kind: Values
) -> Iterator[list[dict[str, Any]]]:
    """The arguments `func` is called with on a state of `kind`, each with its texts'
    alternatives (`texts`), tried until one is not refused: one call; a sorted query one
    per key and direction, from the start and (keyset) after a position of that key."""
    each = [_calls(func, module, replace(kind, text=text)) for text in texts(kind, 0)]
    for alternatives in zip(*each, strict=True):
        yield list(alternatives)


def _calls(func: Callable[..., Any], module: ModuleType, kind: Values) -> Iterator[dict[str, Any]]:
    hints = typing.get_type_hints(func)
    hints.pop("return")
    args = {n: argument(t, kind) for n, t in hints.items() if n not in ("conn", "after")}
    sorting = getattr(module, f"{func.__name__.upper()}_SORTING", None)
    if sorting is None:
        if "after" in hints:
            args["after"] = None
        yield args
        return
    for key, sort_key in sorting.keys.items():
        for direction in sort_key.directions:
            yield {**args, "orderby": key, "sort": direction, "after": None}
            if sorting.keyset:
                after = (
                    argument(KEY_KINDS[sort_key.kind], kind),
                    argument(KEY_KINDS[str(sorting.tie_kind)], kind),
                )
                yield {**args, "orderby": key, "sort": direction, "after": after}


# --- results -------------------------------------------------------------------------------


def never_null(annotation: Any) -> bool:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return type(None) not in typing.get_args(annotation)
    return annotation not in (Any, None, type(None))


def nulls(value: Any, annotation: Any, column: str) -> list[str]:
    """The never-NULL columns `value` holds NULL in (`leaves`). A :one's `| None` is its
    missing row; an array column's elements are not judged."""
    return [c for c, a, v in leaves(value, annotation, column) if v is None and never_null(a)]


def leaves(value: Any, annotation: Any, column: str) -> Iterator[tuple[str, Any, Any]]:
    """Each column of a result with its annotation and value: a field, a row of a list (a
    :many, a batch, a page's rows), a field of an embedded model or a composite."""
    inner = _options(annotation)
    if isinstance(value, list) and inner and typing.get_origin(inner[0]) is list:
        item = typing.get_args(inner[0])[0]
        if not column or any(_fields(o) for o in _options(item)):  # else an array column
            for row in value:
                yield from leaves(row, item, f"{column}[]" if column else "")
            return
    fields = _fields(type(value)) if value is not None else {}
    if not fields:
        yield column, annotation, value
    for name, hint in fields.items():
        yield from leaves(getattr(value, name), hint, f"{column}.{name}" if column else name)


# --- the run -------------------------------------------------------------------------------


def functions(package: str, modules: list[str]) -> list[tuple[str, Callable[..., Any], ModuleType]]:
    """Every query function of the package's modules (the `iter_` forms read as their
    list ones do)."""
    found = []
    for module_name in modules:
        module = importlib.import_module(f"{package}.{module_name}")
        for name, func in inspect.getmembers(module, inspect.isfunction):
            params = list(inspect.signature(func).parameters)
            if func.__module__ != module.__name__ or name.startswith("iter_"):
                continue
            if params[:1] == ["conn"]:
                found.append((f"{module_name}.{name}", func, module))
    return found


async def run(
    package: str,
    modules: list[str],
    database: Database,
    witnesses: Path = WITNESSES,
    unjudged: list[str] | None = None,
    results: list[tuple[str, Any, Any]] | None = None,
) -> list[Lie]:
    """Every query function of `modules` of the generated `package` on every state; the
    queries no call returned from (the schema's constraints refused every state and
    argument) into `unjudged`; each call's query, return annotation and result into
    `results`."""
    unjudged = [] if unjudged is None else unjudged
    returned_rows: set[str] = set()
    refusals: dict[str, BaseException] = {}
    lies: dict[tuple[str, str], Lie] = {}
    found = functions(package, modules)

    def lie(query: str, column: str, state: State, args: dict[str, Any], what: str) -> None:
        if (query, column) not in lies:
            func = next(f for q, f, _ in found if q == query)
            path = witnesses / package / f"{query}.sql"
            write_witness(path, f"{package}.{query}: {column} {what}", state, args, func)
            lies[query, column] = Lie(query, column, path, what)

    async for state in database.states():
        for query, func, module in found:
            returned = typing.get_type_hints(func)["return"]
            kind = replace(state.kind, aware=database.aware, infinite=database.infinite)
            for alternatives in calls(func, module, kind):
                for args in alternatives:
                    try:
                        result = await database.call(func, args)
                    except Exception as exc:
                        if database.refuses(exc):
                            refusals[query] = exc
                            continue
                        # an argument of its annotation refused, a query that cannot run
                        lie(query, "the call", state, args, f"fails: {exc!r}")
                        break
                    returned_rows.add(query)
                    if results is not None:
                        results.append((query, returned, result))
                    for column in nulls(result, returned, ""):
                        label = f"column {column}" if column else "the result"
                        lie(query, label, state, args, "annotated never-NULL, NULL")
                    break
    unjudged[:] = [f"{q} ({refusals[q]!r})" for q in sorted(set(refusals) - returned_rows)]
    return list(lies.values())


def write_witness(
    path: Path, title: str, state: State, args: dict[str, Any], func: Callable[..., Any]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    inserts = [f"{sql};" for sql in state.inserts]
    lines = [
        f"-- {title}",
        f"-- on the state: {state.name}",
        *inserts,
        f"-- called with {args!r}:",
        inspect.getdoc(func) or "",
    ]
    path.write_text("\n".join(lines) + "\n")


async def awaited(result: Any) -> Any:
    """A sync driver's result as is, an async one's awaited."""
    return await result if isinstance(result, Awaitable) else result
