"""The first two rows of codegen/README.md's accuracy table, measured on the PostgreSQL
conformance project (tests/codegen/conformance/pg: CTEs, jsonb operators, aggregates,
casts, strict functions, outer joins, a UNION, window functions, composites), generated
twice: with the types lock the types step writes (codegen/types_command.py), and typed by
sqlc's own types (no lock, `allow: [sqlc_types]`). Each package is run by the live
conformance run (tests/codegen/conformance/live.py).

- Optional lies: result columns annotated never-NULL that came back NULL in the live run
  of the locked package: the plugin's annotations, and sqlc's own NOT NULL (its request).
- Right types: parameters annotated as the server's PREPARE types them (the lock), and
  columns whose every non-NULL value the driver returned in the run is of the annotation.

The README's numbers must be the measured ones."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from codegen import types_command
from codegen.naming import snake
from codegen.typeslock import schema_paths
from tests.codegen.conformance import live, support
from tests.codegen.conformance.live_pg import live_run
from tests.servers import DatabaseFactory, Servers
from tools.sqlc_run import SQLC
from tools.sqlc_types import apply_schema

ROOT = Path(__file__).resolve().parents[2]
CASE = ROOT / "tests" / "codegen" / "conformance" / "pg"
README = ROOT / "codegen" / "README.md"


class Run(typing.NamedTuple):
    package: ModuleType
    lies: list[live.Lie]
    columns: dict[tuple[str, str], list[tuple[Any, Any]]]  # (query, column): (annotation, value)


@pytest.fixture
def generated(servers: Servers, tmp_path: Path) -> dict[bool, Path]:
    """The project generated with the types lock (True) and without (False)."""
    env = {"TEST_PG_DSN": servers.pg_dsn}
    return {
        lock: support.generate(CASE, tmp_path / str(lock), f"accuracy_{lock}", env, lock=lock)
        for lock in (True, False)
    }


async def measured(databases: DatabaseFactory, out: Path) -> Run:
    """The live run of the generated package `out`: its lies and columns."""
    module = support.import_generated(out, "q")
    project = live.Project(module.__package__ or "", ["q"], schema_paths(["schema"], CASE))
    dsn = databases.create("accuracy", "postgresql")
    apply_schema(dsn, project.schema)
    results: list[tuple[str, Any, Any]] = []
    lies = await live_run(dsn, project, out.parent / "witnesses", results)
    columns: dict[tuple[str, str], list[tuple[Any, Any]]] = {}
    for query, returned, result in results:
        for column, annotation, value in live.leaves(result, returned, ""):
            columns.setdefault((query, column), []).append((annotation, value))
    return Run(module, lies, columns)


def of_its_type(annotation: Any, value: Any) -> bool:
    """`value` is of a member of `annotation` (`Any` is no type: never)."""
    members = list(typing.get_args(annotation)) if _union(annotation) else [annotation]
    for member in members:
        if typing.get_origin(member) is typing.Literal:
            if value in typing.get_args(member):
                return True
        elif member is not Any and isinstance(value, typing.get_origin(member) or member):
            return True
    return False


def _union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, type(int | None))


def parameters(package: ModuleType) -> dict[tuple[str, str], str]:
    """Every query function's parameter (but the connection) with its annotation."""
    return {
        (query, name): str(p.annotation)
        for query, func, _ in live.functions(package.__package__ or "", ["q"])
        for name, p in inspect.signature(func).parameters.items()
        if name != "conn"
    }


def sqlc_lies(run: Run, config: Path) -> int:
    """The result columns sqlc's request says NOT NULL that came back NULL in `run` (a
    :one's missing row aside; an embedded table's fields as the table's NOT NULL says)."""
    not_null: dict[tuple[str, str], bool] = {}
    commands = {}
    for q in types_command.requests(config, str(SQLC))[0]["queries"]:
        query = f"q.{snake(q['name'])}"
        commands[query] = q["cmd"]
        for c in q["columns"]:
            name = snake(c["name"])
            while (query, name) in not_null:  # the plugin's field names (plan.py)
                name += "_"
            not_null[query, name] = c.get("not_null", False)
            if len(q["columns"]) == 1:  # a scalar result
                not_null[query, ""] = not_null[query, name]
    lies = set()
    for (query, column), seen in run.columns.items():
        if all(v is not None for _, v in seen) or (column == "" and commands[query] != ":many"):
            continue  # "": a :one's missing row (a scalar :one's NULL looks alike), an :exec's
        path = column.split(".")
        says = not_null[query, path[0]] if len(path) == 1 else live.never_null(seen[0][0])
        if says:
            lies.add((query, column))
    return len(lies)


def right_types(run: Run, reference: Run) -> tuple[int, int]:
    """(right, judged): the parameters of `reference` (the lock's: the server's PREPARE)
    annotated alike in `run`, and the columns the reference run saw non-NULL whose every
    non-NULL value in `run` is of its annotation."""
    ours, server = parameters(run.package), parameters(reference.package)
    right = sum(ours.get(key) == annotation for key, annotation in server.items())
    judged = [key for key, seen in reference.columns.items() if any(v is not None for _, v in seen)]
    for key in judged:
        seen = [(a, v) for a, v in run.columns.get(key, []) if v is not None]
        right += bool(seen) and all(of_its_type(a, v) for a, v in seen)
    return right, len(server) + len(judged)


def readme_row(start: str) -> list[str]:
    """The sqlc-types and sqlc-gen-fixup cells of the accuracy table's row `start`."""
    section = README.read_text().split("\n## Accuracy\n", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in section.splitlines() if line.startswith(f"| {start}"))
    return [cell.strip() for cell in row.strip("|").split(" | ")][1:3]


async def test_the_readme_accuracy_figures_are_measured(
    databases: DatabaseFactory, generated: dict[bool, Path]
) -> None:
    plugin = await measured(databases, generated[True])
    sqlc = await measured(databases, generated[False])
    assert not plugin.lies, live.report(plugin.lies)  # no Optional lie, every argument taken
    right, judged = right_types(plugin, plugin)
    assert right == judged > 100, f"{right} of {judged}"
    sqlc_right, _ = right_types(sqlc, plugin)
    share = [f"{round(100 * sqlc_right / judged)}%", f"{round(100 * right / judged)}%"]
    config = generated[True].parent / "project" / "sqlc.yaml"
    lies = [str(sqlc_lies(plugin, config)), str(len(plugin.lies))]
    assert readme_row("Optional lies") == lies, f"measured {lies}"
    assert readme_row("hard PostgreSQL set") == share, f"measured {share} of {judged}"
    assert f" the {judged} parameter and column annotations" in README.read_text()
