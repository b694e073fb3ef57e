"""`fixup: sort` read and expanded without a server: a bad directive is refused naming it and
the query; each variant is one static statement rewritten on its parse tree (pglast for
PostgreSQL, sqlglot for MySQL and SQLite) with the engine's placeholders; a keyset
tie-breaker must be unique by the parsed DDL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codegen.errors import CodegenError
from codegen.placeholders import sqlite_placeholders
from codegen.sort_sql import unique_columns
from codegen.sort_variants import check_unique, expand, parse

HERE = Path(__file__).parent


def query(comment: str, **extra: Any) -> dict[str, Any]:
    columns = [
        {"name": "id", "not_null": True, "table": {"name": "items"}},
        {"name": "name", "not_null": True, "table": {"name": "items"}},
        {"name": "age", "not_null": False, "table": {"name": "items"}},
    ]
    return {
        "name": "ListItems",
        "cmd": ":many",
        "filename": "items.sql",
        "text": "SELECT id, name, age FROM items WHERE age > $1 OR age IS NULL LIMIT $2",
        "columns": columns,
        "params": [
            {"number": 1, "column": {"name": "min_age", "not_null": True}},
            {"number": 2, "column": {"name": "row_limit", "not_null": True}},
        ],
        "comments": [" fixup: sort " + comment],
        **extra,
    }


def expanded(engine: str, q: dict[str, Any]) -> list[dict[str, Any]]:
    raw = expand({"settings": {"engine": engine}, "queries": [q]})
    queries: list[dict[str, Any]] = raw["queries"]
    return queries


@pytest.mark.parametrize(
    ("comment", "message"),
    [
        ("nick, keyset id", "sort key 'nick' is not a column of the result"),
        ("name sideways, keyset id", "unknown direction word 'sideways' for sort key 'name'"),
        ("name, keyset", "keyset paging needs a unique tie-breaker"),
        ("name, keyset id name", "the last item is 'keyset <unique column>'"),
        ("name, keyset age", "tie-breaker 'age' is nullable"),
        ("name, keyset name", "tie-breaker 'name' is also a sort key"),
        ("name, name desc, keyset id", "sort key 'name' given twice"),
        ("name=lower(name), keyset id", "a keyset key is a column"),
    ],
)
def test_a_bad_directive_names_what_and_the_query(comment: str, message: str) -> None:
    with pytest.raises(CodegenError, match=message) as info:
        parse(query(comment))
    assert "items.sql: query ListItems" in str(info.value)


def test_keyset_needs_a_unique_tie_breaker() -> None:
    with pytest.raises(CodegenError, match=r"query ListItems: keyset paging needs a unique tie"):
        expanded("postgresql", query("name, age, keyset"))
    spec = parse(query("age, keyset name"))
    assert spec is not None
    schema = "CREATE TABLE items (\n  id bigserial PRIMARY KEY,\n  name text NOT NULL\n);"
    assert unique_columns("postgresql", [schema]) == {("items", "id")}
    with pytest.raises(CodegenError, match=r"ListItems: tie-breaker 'name' is not a unique column"):
        check_unique(spec, unique_columns("postgresql", [schema]), "items.sql: query ListItems")
    unique_name = schema + "\nCREATE UNIQUE INDEX items_name ON items (name);"
    check_unique(spec, unique_columns("postgresql", [unique_name]), "items.sql: query ListItems")


UNIQUE_DDL = """
CREATE TABLE t (a INT, b TEXT NOT NULL UNIQUE, c INT, d INT, e INT, f INT,
  UNIQUE (c), PRIMARY KEY (a), UNIQUE (e, f));
CREATE UNIQUE INDEX t_d ON t (d) WHERE d > 0;
CREATE UNIQUE INDEX t_f ON t (f);
ALTER TABLE t ADD CONSTRAINT t_e UNIQUE (e);
"""


@pytest.mark.parametrize("engine", ["postgresql", "sqlite"])
def test_unique_columns_come_from_the_parsed_ddl(engine: str) -> None:
    """A column's own PRIMARY KEY or UNIQUE, a one-column constraint or whole-table unique
    index; not a partial index nor one column of a two-column constraint."""
    ddl = UNIQUE_DDL if engine == "postgresql" else UNIQUE_DDL.rsplit("ALTER", 1)[0]
    found = unique_columns(engine, [ddl])
    assert found == {("t", c) for c in ("a", "b", "c", "f", *(["e"] if engine != "sqlite" else []))}


def test_the_test_schemas_unique_columns() -> None:
    pg = unique_columns("postgresql", [(HERE / "pg" / "schema.sql").read_text()])
    assert {("authors", "id"), ("books", "id")} <= pg
    mysql = unique_columns("mysql", [(HERE / "mysql" / "schema.sql").read_text()])
    assert {("gadgets", "id"), ("parts", "id")} <= mysql
    assert unique_columns("sqlite", [(HERE / "sqlite" / "schema.sql").read_text()]) == {
        ("authors", "id"),
        ("books", "id"),
    }


def test_a_sorted_query_has_no_order_by_of_its_own_and_is_many() -> None:
    for engine, text in [
        ("postgresql", "SELECT id, name, age FROM items ORDER BY id"),
        ("mysql", "SELECT id, name, age FROM items ORDER BY id"),
    ]:
        with pytest.raises(CodegenError, match=r"ListItems: a 'fixup: sort' query has no ORDER"):
            expanded(engine, query("name, keyset id", text=text, params=[]))
    with pytest.raises(CodegenError, match=r"ListItems: 'fixup: sort' needs a :many query"):
        parse(query("name, keyset id", cmd=":one"))
    grouped = query("name, keyset id", text="SELECT id, name, age FROM items GROUP BY id")
    with pytest.raises(CodegenError, match=r"keyset paging cannot follow a query with GROUP BY"):
        expanded("postgresql", {**grouped, "params": []})


def test_postgresql_variants_are_static_with_numbered_keyset_parameters() -> None:
    variants = expanded("postgresql", query("name, age desc, keyset id"))
    assert [q["name"] for q in variants] == [
        "ListItemsByNameAsc",
        "ListItemsByNameDesc",
        "ListItemsByAgeDesc",
    ]
    for q in variants:  # the keyset parameters follow the query's own, typed by the columns
        assert [p["number"] for p in q["params"]] == [1, 2, 3, 4]
        assert "WHERE (age > $1 OR age IS NULL) AND (" in " ".join(q["text"].split())
        assert q["text"].endswith("LIMIT $2")
    assert [q["text"].split("ORDER BY ")[1].split("\n")[0] for q in variants] == [
        "name ASC, id ASC",
        "name DESC, id DESC",
        "age DESC, id DESC",
    ]
    assert "($3 IS NULL AND (age IS NOT NULL OR id < $4))" in variants[2]["text"]


def test_mysql_variants_bind_each_question_mark_in_text_order() -> None:
    q = query(
        "age, keyset id",
        text="SELECT id, name, age FROM items WHERE age > ? AND id IN (/*SLICE:ids*/?) LIMIT ?",
        params=[
            {"number": 1, "column": {"name": "min_age"}},
            {"number": 2, "column": {"name": "ids", "is_sqlc_slice": True}},
            {"number": 3, "column": {"name": "row_limit"}},
        ],
    )
    for v in expanded("mysql", q):
        names = [p["column"]["name"] for p in v["params"]]
        keyset = ["after_tie", "after_key", "after_key", "after_tie", "after_key", "after_tie"]
        assert names == ["min_age", "ids", *keyset, "row_limit"]
        assert [p["number"] for p in v["params"]] == list(range(1, 10))
        assert v["text"].count("?") == 9
        assert "/*SLICE:ids*/?" in v["text"]


def test_sqlite_variants_number_every_placeholder() -> None:
    q = query(
        "age, keyset id",
        text="SELECT id, name, age FROM items WHERE age > ?2 AND id IN (/*SLICE:ids*/?) LIMIT ?1",
        params=[
            {"number": 1, "column": {"name": "row_limit", "is_named_param": True}},
            {"number": 2, "column": {"name": "min_age", "is_named_param": True}},
            {"number": 3, "column": {"name": "ids", "is_sqlc_slice": True}},
        ],
    )
    for v in expanded("sqlite", q):
        assert [p["number"] for p in v["params"]] == [1, 2, 3, 4, 5]
        _, numbers = sqlite_placeholders(v["text"])
        assert numbers == [2, 3, 5, 4, 4, 5, 4, 5, 1]
        assert "IN (/*SLICE:ids*/?3)" in v["text"]
