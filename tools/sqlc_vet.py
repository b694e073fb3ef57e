"""`make sqlc-vet`: PREPARE every query on a real server, compare with the generated types.

The server answers one type per result column, flat and in order; the plugin reshapes them
(`fixup: once` hoists the leading columns into a page, `sqlc.embed` nests a table's columns,
a whole-table result becomes the table's model). `generated_columns` undoes that reshaping,
so each generated annotation is compared with the server's type at its own position, and a
column name that differs there (a shifted column) is a mismatch too.
"""

from __future__ import annotations

from dataclasses import dataclass

from codegen.errors import CodegenError
from codegen.plan import ROW_COMMANDS, Embed, Planner, QueryPlan
from codegen.pytypes import TypeMapper, parse_overrides
from codegen.request import Column, Query, Request
from tools.sqlc_run import QueryFailures, SqlcError, load_config, request_json
from tools.sqlc_types import server_types

# generated on purpose from sqlc's knowledge where the server's wire type says less:
# MySQL tinyint(1) is read as bool, MySQL JSON (longtext on the wire) is decoded
WIDER_THAN_SERVER = {"bool", "JSON"}


@dataclass(frozen=True, slots=True)
class Generated:
    """One result column as the generated code reads it."""

    name: str
    annotation: str  # without `| None`: nullability is ADR 0008's, not the server's


def generated_columns(plan: QueryPlan) -> list[Generated]:
    """The generated annotations in the server's column order: the `fixup: once` values
    first, then the row's fields with every `sqlc.embed` table flattened."""
    out = [Generated(f.db_name, _base(f.type.annotation)) for f in plan.once]
    for f in plan.row_fields:
        fields = f.fields if isinstance(f, Embed) else [f]
        out += [Generated(g.db_name, _base(g.type.annotation)) for g in fields]
    return out


def server_columns(q: Query, request: Request) -> list[Column]:
    """sqlc's result columns flat, as the server returns them (an embed is its table's)."""
    flat: list[Column] = []
    for col in q.columns:
        if col.embed_table is None:
            flat.append(col)
        elif table := request.tables.get(col.embed_table):
            flat += table.columns
    return flat


def mismatches(
    q: Query, plan: QueryPlan, server: list[str], request: Request, mapper: TypeMapper
) -> list[str]:
    """Every result column whose generated type is not what the server's type maps to."""
    where = f"{q.filename}: {q.name}"
    generated = generated_columns(plan)
    columns = server_columns(q, request)
    if not (len(generated) == len(columns) == len(server)):
        return [
            f"{where}: {len(generated)} generated columns, {len(columns)} from sqlc, "
            f"{len(server)} from the server"
        ]
    problems = []
    for gen, col, server_type in zip(generated, columns, server, strict=True):
        if gen.name != col.name:
            problems.append(f"{where}: column {col.name}: generated at its position: {gen.name}")
            continue
        base, is_array = server_type.removesuffix("[]"), server_type.endswith("[]")
        expected = mapper.scalar(col, base)
        if expected is None:  # a type the plugin maps by sqlc's name (a domain): nothing to say
            continue
        want = f"list[{expected.annotation}]" if is_array else expected.annotation
        if want == gen.annotation:
            continue
        if col.type.name in mapper.enums or gen.annotation in WIDER_THAN_SERVER:
            continue
        problems.append(f"{where}: column {col.name}: generated {gen.annotation}, server {want}")
    return problems


def _base(annotation: str) -> str:
    return annotation.removesuffix(" | None")


def vet(db: str) -> None:
    """PREPARE every query on a real server and compare its types with the generated ones."""
    raw = request_json(db)
    entries, failures = server_types(db, raw)
    if failures:
        raise QueryFailures("\n".join(failures.values()))
    request = Request.parse({**raw, "plugin_options": ""})
    options = load_config(db)["sql"][0]["codegen"][0].get("options", {})
    overrides = parse_overrides(options.get("overrides", []))
    driver, model_type = options.get("driver", ""), options.get("model_type", "dataclass")
    mapper = TypeMapper(request, overrides, driver=driver, model_type=model_type)
    planner = Planner(request, mapper, entries)
    problems: list[str] = []
    refused = 0
    for q in request.queries:
        try:
            plan = planner.plan(q)
        except CodegenError:  # not generated (make sqlc names it): nothing to compare
            refused += 1
            continue
        if q.cmd in ROW_COMMANDS and q.columns:  # :exec & co. read no row
            problems += mismatches(q, plan, entries[q.name].columns, request, mapper)
    if problems:
        raise SqlcError("sqlc-vet found mismatches:\n" + "\n".join(problems))
    checked = len(request.queries) - refused
    print(f"sqlc-vet: {db}: {checked} generated queries prepared on the server, types agree")
