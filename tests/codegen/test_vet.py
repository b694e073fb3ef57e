"""`make sqlc-vet` tells the truth: 0 mismatches on every database of the repository (its
`fixup: once` pages and `sqlc.embed` rows compared column by column at the right position),
and a planted mismatch is caught, named by query and column."""

from __future__ import annotations

from dataclasses import replace

import pytest

from codegen.plan import Planner, QueryPlan
from codegen.pytypes import TypeMapper
from codegen.request import Query, Request
from codegen.typeslock import LockEntry, load
from tests.servers import Servers
from tools.local.databases import DATABASES
from tools.sqlc_run import request_json, sql_dir
from tools.sqlc_vet import generated_columns, mismatches, vet


def test_every_database_agrees_with_its_server(
    servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    for db in DATABASES:
        vet(db)
    out = capsys.readouterr().out
    assert [line.endswith("types agree") for line in out.splitlines()] == [True] * len(DATABASES)


def departments() -> tuple[Request, TypeMapper, dict[str, LockEntry]]:
    """The departments request and its types lock (what the server answered: sqlc-check
    keeps the lock current), so the planted cases need no server."""
    request = Request.parse({**request_json("departments"), "plugin_options": ""})
    _, lock = load(sql_dir("departments") / "types.lock.json")
    return request, TypeMapper(request, []), lock


def page_query(request: Request) -> Query:
    return next(q for q in request.queries if q.name == "PageDepartmentsByCreatedAtDesc")


def planned(request: Request, mapper: TypeMapper, lock: dict[str, LockEntry]) -> QueryPlan:
    return Planner(request, mapper, lock).plan(page_query(request))


def test_once_columns_are_compared_at_their_own_positions() -> None:
    request, mapper, lock = departments()
    q = page_query(request)
    plan = planned(request, mapper, lock)
    assert plan.once, "the page query reads its leading columns once"
    names = [c.name for c in generated_columns(plan)]
    assert names == [c.name for c in q.columns]
    assert mismatches(q, plan, lock[q.name].columns, request, mapper) == []


def test_a_planted_type_mismatch_is_named() -> None:
    request, mapper, lock = departments()
    q = page_query(request)
    server = list(lock[q.name].columns)
    position = [c.name for c in q.columns].index("name")
    server[position] = "int4"  # the server now says the name is an integer
    found = mismatches(q, planned(request, mapper, lock), server, request, mapper)
    assert found == [f"{q.filename}: {q.name}: column name: generated str, server int"]


def test_a_shifted_column_is_named() -> None:
    request, mapper, lock = departments()
    q = page_query(request)
    plan = planned(request, mapper, lock)
    # the page's values read behind the first row column: every position shifts
    fields = [*plan.row_fields[:1], *plan.once, *plan.row_fields[1:]]
    found = mismatches(q, replace(plan, once=[], row_fields=fields), lock[q.name].columns,
                       request, mapper)  # fmt: skip
    assert found[0] == f"{q.filename}: {q.name}: column total: generated at its position: id"
    assert len(found) == len(plan.once) + 1  # total, version and id, each named


def test_a_missing_column_is_named() -> None:
    request, mapper, lock = departments()
    q = page_query(request)
    plan = planned(request, mapper, lock)
    short = replace(plan, row_fields=plan.row_fields[:-1])
    found = mismatches(q, short, lock[q.name].columns, request, mapper)
    n = len(q.columns)
    assert found == [
        f"{q.filename}: {q.name}: {n - 1} generated columns, {n} from sqlc, {n} from the server"
    ]
