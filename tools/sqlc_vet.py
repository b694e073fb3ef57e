"""`make sqlc-vet`: PREPARE every query on a real server, compare with the generated types."""

from __future__ import annotations

from codegen.errors import CodegenError
from codegen.plan import Planner
from codegen.pytypes import TypeMapper, parse_overrides
from codegen.request import Request
from tools.sqlc_run import QueryFailures, SqlcError, load_config, request_json
from tools.sqlc_types import server_types


def vet(db: str) -> None:
    """PREPARE every query on a real server and compare its types with the generated ones."""
    raw = request_json(db)
    entries, failures = server_types(db, raw)
    if failures:
        raise QueryFailures("\n".join(failures.values()))
    request = Request.parse({**raw, "plugin_options": ""})
    options = load_config(db)["sql"][0]["codegen"][0].get("options", {})
    mapper = TypeMapper(request, parse_overrides(options.get("overrides", [])))
    planner = Planner(request, mapper, entries)
    problems = []
    refused = 0
    for q in request.queries:
        try:
            plan = planner.plan(q)
        except CodegenError:  # not generated (make sqlc names it): nothing to compare
            refused += 1
            continue
        server = entries[q.name]
        flat_types = [
            f.type.annotation.removesuffix(" | None")
            for f in plan.row_fields
            if not hasattr(f, "cls")
        ]
        for i, (col, server_type) in enumerate(zip(q.columns, server.columns, strict=False)):
            if col.embed_table or i >= len(flat_types):
                continue
            base, is_array = server_type.removesuffix("[]"), server_type.endswith("[]")
            expected = mapper.scalar(col, base)
            if expected is None:
                continue
            want = f"list[{expected.annotation}]" if is_array else expected.annotation
            got = flat_types[i]
            if want != got and not (col.type.name in mapper.enums or got in ("bool", "JSON")):
                where = f"{q.filename}: {q.name}: column {col.name}"
                problems.append(f"{where}: generated {got}, server {want}")
    if problems:
        raise SqlcError("sqlc-vet found mismatches:\n" + "\n".join(problems))
    checked = len(request.queries) - refused
    print(f"sqlc-vet: {db}: {checked} generated queries prepared on the server, types agree")
