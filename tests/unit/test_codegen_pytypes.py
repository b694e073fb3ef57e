"""codegen/pytypes without a server: the SQL -> Python type table per engine, overrides,
enums, composites, MySQL's tinyint(1) and SET, arrays and NULL, and the error (or the
warning and Any) for a type nobody maps."""

from __future__ import annotations

from typing import Any

import pytest

from codegen.errors import CodegenError
from codegen.pytypes import (
    ANY,
    DECIMAL,
    INT,
    MYSQL_BOOL,
    MYSQL_SET,
    STR,
    Override,
    PyType,
    TypeMapper,
    parse_overrides,
)
from codegen.request import Column, Request, TypeRef


def column(
    type_name: str,
    *,
    name: str = "c",
    not_null: bool = True,
    is_array: bool = False,
    array_dims: int = 0,
    length: int = -1,
    table: str | None = "t",
    original_name: str = "",
    is_sqlc_slice: bool = False,
) -> Column:
    return Column(
        name=name,
        not_null=not_null,
        is_array=is_array,
        array_dims=array_dims,
        length=length,
        unsigned=False,
        is_func_call=False,
        type=TypeRef("", type_name),
        table=table,
        original_name=original_name,
        is_sqlc_slice=is_sqlc_slice,
        embed_table=None,
    )


def mapper(
    engine: str = "postgresql",
    overrides: list[Override] | None = None,
    enums: dict[str, Any] | None = None,
    set_types: frozenset[str] = frozenset(),
    warn: Any = None,
) -> TypeMapper:
    request = Request(engine=engine, queries=[], tables={}, enums=enums or {})
    return TypeMapper(request, overrides or [], set_types, warn)


# --- PyType --------------------------------------------------------------------------------


def test_optional_adds_none_once() -> None:
    assert PyType("int").optional() == PyType("int | None")
    assert PyType("int | None").optional() == PyType("int | None")
    assert PyType("None").optional() == PyType("None")
    assert PyType("Any").optional() == PyType("Any")
    kept = PyType("UUID", frozenset({"from uuid import UUID"}), "d({})", "e({})", "str")
    assert kept.optional() == PyType(
        "UUID | None", frozenset({"from uuid import UUID"}), "d({})", "e({})", "str"
    )


def test_listed_maps_each_element() -> None:
    plain = PyType("int", frozenset({"x"})).listed()
    assert plain == PyType("list[int]", frozenset({"x"}), None, None, "list")
    converted = PyType("E", frozenset(), "E({})", "str({})", "str").listed()
    assert converted.annotation == "list[E]"
    assert converted.decode == "[E(_v) for _v in {}]"
    assert converted.encode == "[str(_v) for _v in {}]"
    assert converted.driver_type == "list"
    assert converted.decode.format("rows") == "[E(_v) for _v in rows]"


# --- overrides -----------------------------------------------------------------------------


def test_parse_overrides() -> None:
    got = parse_overrides(
        [
            {"db_type": "citext", "py_type": "CIStr", "import": "from x import CIStr"},
            {"column": "users.email", "py_type": "Email"},
            {"column": "users.age", "py_type": "int", "import": ""},
        ]
    )
    assert got == [
        Override(PyType("CIStr", frozenset({"from x import CIStr"})), "citext", None),
        Override(PyType("Email"), None, "users.email"),
        Override(PyType("int"), None, "users.age"),
    ]


@pytest.mark.parametrize(
    "item", [{"db_type": "x"}, {"py_type": "X"}, {"py_type": "X", "import": "y"}]
)
def test_an_incomplete_override_is_an_error(item: dict[str, str]) -> None:
    with pytest.raises(CodegenError) as caught:
        parse_overrides([item])
    assert str(caught.value) == f"override {item} needs py_type and db_type or column"


def test_a_column_override_wins_for_that_column_only() -> None:
    email = PyType("Email")
    m = mapper(overrides=[Override(email, None, "users.email")])
    assert m.scalar(column("text", name="email", table="users")) is email
    assert m.scalar(column("text", name="e", original_name="email", table="users")) is email
    assert m.scalar(column("text", name="email", table="other")) == STR
    assert m.scalar(column("text", name="name", table="users")) == STR
    assert m.scalar(column("text", name="email", table=None)) == STR


def test_a_db_type_override_matches_case_insensitively() -> None:
    ci = PyType("CIStr")
    m = mapper(overrides=[Override(ci, "CItext", None)])
    assert m.scalar(column("citext")) is ci
    assert m.scalar(column("CITEXT")) is ci
    assert m.scalar(column("text")) == STR


def test_overrides_are_tried_in_order() -> None:
    first, second = PyType("A"), PyType("B")
    m = mapper(overrides=[Override(first, "int4", None), Override(second, "int4", None)])
    assert m.scalar(column("int4")) is first


# --- the tables ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "annotation"),
    [
        ("int4", "int"),
        ("bigint", "int"),
        ("numeric", "Decimal"),
        ("text", "str"),
        ("uuid", "UUID"),
        ("timestamptz", "datetime.datetime"),
        ("jsonb", "JSON"),
        ("bytea", "bytes"),
        ("bool", "bool"),
        ("interval", "datetime.timedelta"),
        ("int4range", "Range[int]"),
        ("tstzmultirange", "list[Range[datetime.datetime]]"),
        ("INT4", "int"),
    ],
)
def test_postgres_types(sql: str, annotation: str) -> None:
    assert mapper().scalar(column(sql)).annotation == annotation  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("sql", "annotation"),
    [("int", "int"), ("varchar", "str"), ("datetime", "datetime.datetime"), ("json", "JSON")],
)
def test_mysql_types(sql: str, annotation: str) -> None:
    assert mapper("mysql").scalar(column(sql)).annotation == annotation  # type: ignore[union-attr]


def test_mysql_datetime_converts_both_ways() -> None:
    py = mapper("mysql").scalar(column("datetime"))
    assert py is not None
    assert (py.decode, py.encode) == ("runtime.utc({})", "runtime.naive_utc({})")


def test_a_type_given_by_name_wins_over_the_columns() -> None:
    assert mapper().scalar(column("text"), "int8") == INT
    assert mapper().scalar(column("text"), "NUMERIC") == DECIMAL


def test_mysql_tinyint_1_is_bool_other_lengths_int() -> None:
    m = mapper("mysql")
    assert m.scalar(column("tinyint", length=1)) is MYSQL_BOOL
    assert m.scalar(column("tinyint", length=4)) == INT
    assert mapper().scalar(column("tinyint", length=1)) is None  # not a PostgreSQL type


def test_mysql_set_types() -> None:
    m = mapper("mysql", enums={"tags": object()}, set_types=frozenset({"tags"}))
    assert m.scalar(column("tags")) is MYSQL_SET


def test_enums_are_classes_of_the_models_module() -> None:
    """Decoded through models.py's {value: member} dict: a lookup, not EnumType.__call__."""
    m = mapper(enums={"order_status": object()})
    py = m.scalar(column("order_status"))
    assert py == PyType(  # decoded by a dict lookup in models.py's table (ADR 0013)
        "OrderStatus",
        frozenset({"from .models import OrderStatus", "from .models import ORDER_STATUS_BY_VALUE"}),
        "ORDER_STATUS_BY_VALUE[{}]",
        None,
        "str",
    )
    assert m.enum_class("job_status") == "JobStatus"


def test_composites_decode_from_the_record_and_encode_as_a_tuple() -> None:
    m = mapper()
    m.composites["money_amount"] = ("MoneyAmount", [("amount", "numeric")])
    assert m.scalar(column("money_amount")) == PyType(
        "MoneyAmount",
        frozenset({"from .models import MoneyAmount", "import dataclasses"}),
        "MoneyAmount.from_record({})",
        "dataclasses.astuple({})",
        None,
    )


def test_composites_of_msgspec_and_attrs_models_encode_with_their_own_library() -> None:
    request = Request(engine="postgresql", queries=[], tables={}, enums={})
    for model_type, library, encode in (
        ("msgspec", "import msgspec", "msgspec.structs.astuple({})"),
        ("attrs", "import attrs", "attrs.astuple({})"),
    ):
        m = TypeMapper(request, [], model_type=model_type)
        m.composites["money_amount"] = ("MoneyAmount", [("amount", "numeric")])
        assert m.scalar(column("money_amount")) == PyType(
            "MoneyAmount",
            frozenset({"from .models import MoneyAmount", library}),
            "MoneyAmount.from_record({})",
            encode,
            None,
        )


def test_unknown_is_none() -> None:
    assert mapper().scalar(column("no_such_type")) is None


# --- column(): arrays, NULL, the unknown ---------------------------------------------------


def test_column_not_null_and_nullable() -> None:
    m = mapper()
    assert m.column(column("int4"), "q").annotation == "int"
    assert m.column(column("int4", not_null=False), "q").annotation == "int | None"


@pytest.mark.parametrize("kind", [{"is_array": True}, {"array_dims": 1}, {"array_dims": 2}])
def test_column_arrays_are_lists(kind: dict[str, Any]) -> None:
    m = mapper()
    assert m.column(column("int4", **kind), "q").annotation == "list[int]"
    nullable = m.column(column("int4", not_null=False, **kind), "q")
    assert nullable.annotation == "list[int] | None"


def test_a_slice_is_a_list_never_none() -> None:
    """`x IN (sqlc.slice(xs))` on a nullable column: the list is never NULL (the runtime
    expands it; an empty one matches no row)."""
    m = mapper()
    for not_null in (True, False):
        sliced = column("int4", not_null=not_null, is_sqlc_slice=True)
        assert m.column(sliced, "q").annotation == "list[int]"


def test_column_prefers_the_servers_type_name() -> None:
    assert mapper().column(column("text"), "q", "int8") == INT
    assert mapper().column(column("text", not_null=False), "q", "int8").annotation == "int | None"


def test_ranges() -> None:
    from codegen.pytypes import _range

    one = PyType("Range[int]", frozenset({"from asyncpg import Range"}))
    assert _range("int", multi=False) == one
    assert _range("Decimal", "from decimal import Decimal", multi=True) == PyType(
        "list[Range[Decimal]]",
        frozenset({"from asyncpg import Range", "from decimal import Decimal"}),
    )


def test_column_falls_back_to_sqlcs_type_when_the_servers_is_unknown() -> None:
    assert mapper().column(column("int8"), "q", "my_domain") == INT


def test_column_of_an_unknown_type_is_an_error_naming_it() -> None:
    with pytest.raises(CodegenError) as caught:
        mapper().column(column("geometry", name="shape"), "GetShape")
    assert str(caught.value) == (
        "GetShape: column 'shape' has type 'geometry' that the plugin cannot map; "
        "add an override (options.overrides: db_type or column -> py_type)"
    )


def test_column_of_an_unknown_server_type_names_that_type() -> None:
    with pytest.raises(CodegenError) as caught:
        mapper().column(column("geometry", name="shape"), "GetShape", "geography")
    assert "has type 'geography'" in str(caught.value)


def test_column_of_a_nameless_type_says_unknown() -> None:
    with pytest.raises(CodegenError) as caught:
        mapper().column(column("", name="x"), "Q")
    assert "has type 'unknown'" in str(caught.value)


def test_column_with_warn_is_any_and_the_problem_reported() -> None:
    warnings: list[str] = []
    m = mapper(warn=warnings.append)
    assert m.column(column("geometry", name="shape", not_null=False), "GetShape") is ANY
    assert warnings == [
        "GetShape: column 'shape' has type 'geometry' that the plugin cannot map; "
        "add an override (options.overrides: db_type or column -> py_type)"
    ]


def test_the_mapper_keeps_its_inputs() -> None:
    def warn(_: str) -> None:
        return None

    overrides = [Override(PyType("X"), "x", None)]
    request = Request(engine="mysql", queries=[], tables={}, enums={"e": object()})  # type: ignore[dict-item]
    m = TypeMapper(request, overrides, frozenset({"s"}), warn)
    assert (m.engine, m.enums, m.set_types, m.overrides, m.warn) == (
        "mysql",
        {"e": request.enums["e"]},
        frozenset({"s"}),
        overrides,
        warn,
    )
    assert m.composites == {}
    assert mapper().scalar(column("uuid")).annotation == "UUID"  # type: ignore[union-attr]
    assert m.scalar(column("uuid")) is None  # MySQL has no uuid type


# --- typed JSON overrides (json: true) -----------------------------------------------------

ADDRESS = PyType("Address", frozenset({"from jsontypes import Address"}))


def test_parse_overrides_reads_the_json_flag() -> None:
    got = parse_overrides(
        [
            {"column": "place.home", "py_type": "Address", "json": True},
            {"db_type": "jsonb", "py_type": "Doc", "import": "from x import Doc", "json": False},
            {"db_type": "json", "py_type": "Doc"},
        ]
    )
    assert got == [
        Override(PyType("Address"), None, "place.home", json=True),
        Override(PyType("Doc", frozenset({"from x import Doc"})), "jsonb", None, json=False),
        Override(PyType("Doc"), "json", None, json=False),
    ]


@pytest.mark.parametrize("flag", ["yes", 1, None])
def test_a_json_flag_that_is_not_a_boolean_is_an_error_naming_the_override(flag: Any) -> None:
    item = {"column": "place.home", "py_type": "Address", "json": flag}
    with pytest.raises(CodegenError) as caught:
        parse_overrides([item])
    assert str(caught.value) == f"override {item}: json must be true or false"


def test_a_json_override_decodes_and_encodes_through_json_columns_naming_the_column() -> None:
    ov = Override(ADDRESS, None, "place.home", json=True)
    assert ov.typed(column("jsonb", name="home", table="place")) == PyType(
        "Address",
        frozenset({"from jsontypes import Address", "from sqlc_fixup_runtime import json_columns"}),
        "json_columns.loads({}, Address, 'place.home')",
        "json_columns.dumps({})",
        None,
    )
    aliased = column("jsonb", name="h", original_name="home", table="place")
    assert ov.typed(aliased).decode == "json_columns.loads({}, Address, 'place.home')"
    computed = column("jsonb", name="home", table=None)  # no table: the column's own name
    assert ov.typed(computed).decode == "json_columns.loads({}, Address, 'home')"
    assert Override(ADDRESS, None, "place.home").typed(computed) is ADDRESS  # json: false


def test_the_mapper_types_a_json_override_by_column_and_by_db_type() -> None:
    home = column("jsonb", name="home", table="place")
    for ov in (Override(ADDRESS, None, "place.home", True), Override(ADDRESS, "jsonb", None, True)):
        py = mapper(overrides=[ov]).scalar(home)
        assert py is not None
        assert (py.decode, py.encode) == (
            "json_columns.loads({}, Address, 'place.home')",
            "json_columns.dumps({})",
        )


# --- the driver (psycopg) and the model type (pydantic) ------------------------------------


@pytest.mark.parametrize("driver", ["psycopg", "psycopg-sync"])
def test_psycopg_decodes_json_itself_and_lacks_asyncpgs_own_types(driver: str) -> None:
    request = Request(engine="postgresql", queries=[], tables={}, enums={})
    m = TypeMapper(request, [], driver=driver)
    json = m.scalar(column("jsonb"))
    assert json is not None
    assert (json.annotation, json.decode, json.encode, json.driver_type) == (
        "JSON",
        None,
        "runtime.json_dumps({})",
        None,
    )
    assert m.scalar(column("int4")) == INT
    assert m.scalar(column("point")) is None  # text unless registered: an override's job
    assert m.scalar(column("int4range")) is None
    m.composites["money_amount"] = ("MoneyAmount", [("amount", "numeric")])
    assert m.scalar(column("money_amount")) is None  # text, unregistered
    asyncpg = TypeMapper(request, [], driver="asyncpg").scalar(column("jsonb"))
    assert asyncpg is not None
    assert asyncpg.decode == "runtime.json_loads({})"


def test_pydantic_models_take_json_as_the_runtimes_pydantic_alias() -> None:
    request = Request(engine="postgresql", queries=[], tables={}, enums={})
    runtime = "import sqlc_fixup_runtime as runtime"
    pydantic = TypeMapper(request, [], model_type="pydantic")
    json = pydantic.scalar(column("jsonb"))
    assert json == PyType(
        "JSON",
        frozenset({"from sqlc_fixup_runtime.pydantic_rows import JSON", runtime}),
        "runtime.json_loads({})",
        "runtime.json_dumps({})",
        "str",
    )
    assert pydantic.scalar(column("int4")) == INT  # only JSON changes
    assert pydantic.scalar(column("no_such_type")) is None
    plain = mapper().scalar(column("jsonb"))
    assert plain is not None
    assert plain.imports == frozenset({"from sqlc_fixup_runtime import JSON", runtime})


def test_the_mapper_keeps_its_driver() -> None:
    request = Request(engine="postgresql", queries=[], tables={}, enums={})
    assert TypeMapper(request, [], driver="psycopg").driver == "psycopg"
    assert TypeMapper(request, []).driver == ""
