"""SQL type -> Python type, per engine, with the conversions a driver value needs.

`decode` turns the driver's value into the annotated type and `encode` a Python value
into what the driver accepts; each is a template with `{}` for the expression, or None
when the driver already speaks the annotated type (the fast path: no per-value call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .errors import CodegenError
from .naming import RUNTIME, RUNTIME_MODULE, pascal, snake
from .request import Column, Request

JSON_IMPORT = f"from {RUNTIME} import JSON"
PYDANTIC_JSON_IMPORT = f"from {RUNTIME}.pydantic_rows import JSON"  # a named recursive alias


@dataclass(frozen=True, slots=True)
class PyType:
    annotation: str
    imports: frozenset[str] = frozenset()
    decode: str | None = None
    encode: str | None = None
    # the driver's type of a non-NULL value: a decode is skipped for anything else (a NULL
    # the nullability rules missed stays None instead of failing the whole call)
    driver_type: str | None = None

    def optional(self) -> PyType:
        if self.annotation in ("None", "Any") or self.annotation.endswith("| None"):
            return self
        return replace(self, annotation=f"{self.annotation} | None")

    def listed(self) -> PyType:
        decode = f"[{self.decode.format('_v')} for _v in {{}}]" if self.decode else None
        encode = f"[{self.encode.format('_v')} for _v in {{}}]" if self.encode else None
        return PyType(f"list[{self.annotation}]", self.imports, decode, encode, "list")


def _t(
    annotation: str,
    *imports: str,
    decode: str | None = None,
    encode: str | None = None,
    driver_type: str | None = None,
) -> PyType:
    return PyType(annotation, frozenset(imports), decode, encode, driver_type)


# a model type -> the imports and the encode of a composite value: the tuple asyncpg takes
# (nested ones too)
COMPOSITE_ENCODE = {
    "dataclass": ("import dataclasses", "dataclasses.astuple({})"),
    "msgspec": ("import msgspec", "msgspec.structs.astuple({})"),
    "attrs": ("import attrs", "attrs.astuple({})"),
    "pydantic": ("tuple(dict({}).values())",),
}


def _range(element: str, *imports: str, multi: bool) -> PyType:
    annotation = f"Range[{element}]"
    return _t(f"list[{annotation}]" if multi else annotation, "from asyncpg import Range", *imports)


INT, FLOAT, STR, BOOL, BYTES = _t("int"), _t("float"), _t("str"), _t("bool"), _t("bytes")
DECIMAL = _t("Decimal", "from decimal import Decimal")
UUID = _t("UUID", "from uuid import UUID")
DATETIME = _t("datetime.datetime", "import datetime")
DATE = _t("datetime.date", "import datetime")
TIME = _t("datetime.time", "import datetime")
TIMEDELTA = _t("datetime.timedelta", "import datetime")
# JSON is encoded/decoded by the generated code itself, so it works on any connection
# (asyncpg would otherwise want str in and give str out).
JSON_PG = _t(
    "JSON",
    f"from {RUNTIME} import JSON",
    RUNTIME_MODULE,
    decode="runtime.json_loads({})",
    encode="runtime.json_dumps({})",
    driver_type="str",
)
JSON_TEXT = replace(JSON_PG, driver_type="str | bytes")  # MySQL's and SQLite's: text or bytes
INET = _t(
    "IPv4Address | IPv6Address | IPv4Interface | IPv6Interface",
    "from ipaddress import IPv4Address, IPv6Address, IPv4Interface, IPv6Interface",
)
CIDR = _t("IPv4Network | IPv6Network", "from ipaddress import IPv4Network, IPv6Network")

POSTGRES: dict[str, PyType] = {
    **dict.fromkeys(["bool", "boolean"], BOOL),
    **dict.fromkeys(
        [
            *("int2", "smallint", "int4", "integer", "int", "int8", "bigint", "oid"),
            *("serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"),
        ],
        INT,
    ),
    **dict.fromkeys(["float4", "real", "float8", "double precision", "float"], FLOAT),
    **dict.fromkeys(["numeric", "decimal", "pg_catalog.numeric"], DECIMAL),
    **dict.fromkeys(
        ["text", "varchar", "character varying", "bpchar", "char", "character", "citext", "name"],
        STR,
    ),
    "uuid": UUID,
    **dict.fromkeys(["timestamptz", "timestamp with time zone", "timestamp"], DATETIME),
    "date": DATE,
    **dict.fromkeys(["time", "timetz", "time with time zone"], TIME),
    "interval": TIMEDELTA,
    "bytea": BYTES,
    **dict.fromkeys(["json", "jsonb"], JSON_PG),
    "inet": INET,
    "cidr": CIDR,
    # every other type asyncpg decodes, as asyncpg returns it
    **dict.fromkeys(
        ["bit", "varbit", "bit varying"], _t("BitString", "from asyncpg import BitString")
    ),
    **dict.fromkeys(
        [
            "macaddr",
            "macaddr8",
            "money",
            "tsvector",
            "tsquery",
            "xml",
            "jsonpath",
            "hstore",
            "ltree",
            "lquery",
            "ltxtquery",
        ],
        STR,
    ),
    **dict.fromkeys(
        ["regclass", "regtype", "regproc", "regprocedure", "regoper", "regnamespace"], STR
    ),
    **dict.fromkeys(["cid", "xid", "xid8", "pg_lsn", "regrole"], INT),
    "tid": _t("tuple[int, int]"),
    "box": _t("Box", "from asyncpg import Box"),
    "point": _t("Point", "from asyncpg import Point"),
    "line": _t("Line", "from asyncpg import Line"),
    "lseg": _t("LineSegment", "from asyncpg import LineSegment"),
    "path": _t("Path", "from asyncpg import Path"),
    "polygon": _t("Polygon", "from asyncpg import Polygon"),
    "circle": _t("Circle", "from asyncpg import Circle"),
    **{
        f"{base}{kind}": _range(element, *imports, multi=kind == "multirange")
        for base, element, imports in [
            ("int4", "int", ()),
            ("int8", "int", ()),
            ("num", "Decimal", ("from decimal import Decimal",)),
            ("ts", "datetime.datetime", ("import datetime",)),
            ("tstz", "datetime.datetime", ("import datetime",)),
            ("date", "datetime.date", ("import datetime",)),
        ]
        for kind in ("range", "multirange")
    },
    "void": _t("None"),
    "record": _t("tuple[Any, ...]", "from typing import Any"),
}
ANY = _t("Any", "from typing import Any")

# psycopg 3 decodes JSON itself and takes it as text (sent untyped, the server casts it);
# the types below it returns as text unless registered, so they need an override there.
JSON_PSYCOPG = replace(JSON_PG, decode=None, driver_type=None)
_ASYNCPG_ONLY = {"bit", "varbit", "bit varying", "tid", "box", "point", "line", "lseg", "path"}
_ASYNCPG_ONLY |= {"polygon", "circle"} | {k for k in POSTGRES if k.endswith("range")}
PSYCOPG: dict[str, PyType] = {
    **{k: v for k, v in POSTGRES.items() if k not in _ASYNCPG_ONLY},
    **dict.fromkeys(["json", "jsonb"], JSON_PSYCOPG),
}

# MySQL/MariaDB through PyMySQL: datetimes come naive (we store UTC), JSON comes as text,
# tinyint(1) as 0/1, SET as text or a set; the runtime helpers convert both ways.
_RT = RUNTIME_MODULE
MYSQL: dict[str, PyType] = {
    **dict.fromkeys(
        ["tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year", "serial"], INT
    ),
    # CAST(x AS SIGNED|UNSIGNED): sqlc says `bigint signed` / `bigint unsigned`
    **dict.fromkeys(["bigint signed", "bigint unsigned", "signed", "unsigned"], INT),
    **dict.fromkeys(["decimal", "numeric", "dec", "fixed"], DECIMAL),
    **dict.fromkeys(["float", "double", "real", "double precision"], FLOAT),
    **dict.fromkeys(
        ["char", "varchar", "text", "tinytext", "mediumtext", "longtext", "string"], STR
    ),
    **dict.fromkeys(
        ["binary", "varbinary", "blob", "tinyblob", "mediumblob", "longblob", "bit"], BYTES
    ),
    "date": DATE,
    # written as text: PyMySQL 1.1 (pinned for aiomysql#1080) escapes a negative timedelta
    # with complemented minutes and seconds; MySQL reads '-838:59:59' exactly
    "time": _t(
        "datetime.timedelta",
        "import datetime",
        _RT,
        encode="runtime.mysql_time({})",
        driver_type="datetime.timedelta",
    ),
    **dict.fromkeys(
        ["datetime", "timestamp"],
        _t(
            "datetime.datetime",
            "import datetime",
            _RT,
            decode="runtime.utc({})",
            encode="runtime.naive_utc({})",
            driver_type="datetime.datetime",
        ),
    ),
    "json": JSON_TEXT,
    "boolean": _t("bool", decode="bool({})", driver_type="int"),
}
MYSQL_BOOL = _t("bool", decode="bool({})", driver_type="int")
MYSQL_SET = _t("frozenset[str]", _RT, decode="runtime.mysql_set({})", encode='",".join(sorted({}))')


@dataclass(frozen=True, slots=True)
class Override:
    py_type: PyType
    db_type: str | None = None
    column: str | None = None  # "table.column"
    json: bool = False  # a JSON column holding py_type: decoded and encoded by json_columns

    def typed(self, col: Column) -> PyType:
        """The override's type for `col`; a typed JSON one decodes and encodes it, naming
        the column in its error."""
        if not self.json:
            return self.py_type
        where = f"{col.table}.{col.original_name or col.name}" if col.table else col.name
        cls = self.py_type.annotation
        return replace(
            self.py_type,
            imports=self.py_type.imports | {f"from {RUNTIME} import json_columns"},
            decode=f"json_columns.loads({{}}, {cls}, {where!r})",
            encode="json_columns.dumps({})",
        )


def parse_overrides(raw: list[dict[str, Any]]) -> list[Override]:
    result = []
    for item in raw:
        if "py_type" not in item or not ({"db_type", "column"} & item.keys()):
            raise CodegenError(f"override {item} needs py_type and db_type or column")
        imports = frozenset([item["import"]]) if item.get("import") else frozenset()
        json = item.get("json", False)
        if not isinstance(json, bool):
            raise CodegenError(f"override {item}: json must be true or false")
        py = _t(item["py_type"], *imports)
        result.append(Override(py, item.get("db_type"), item.get("column"), json))
    return result


def enum_lookup(cls: str) -> str:
    """The name of models.py's `{value: member}` dict of enum `cls` (`Mood` -> MOOD_BY_VALUE):
    the generated code decodes the driver's text with it, a dict lookup where `Mood(text)`
    goes through EnumType.__call__ (0.6 µs a value: 30 µs for a page of 50 rows)."""
    return f"{snake(cls).upper()}_BY_VALUE"


class TypeMapper:
    def __init__(
        self,
        request: Request,
        overrides: list[Override],
        set_types: frozenset[str] = frozenset(),
        warn: Callable[[str], None] | None = None,
        driver: str = "",
        model_type: str = "dataclass",
    ) -> None:
        self.warn = warn  # None: an unmappable type is an error, else Any and a warning
        self.engine = request.engine
        self.enums = request.enums
        self.set_types = set_types  # MySQL SET columns: sqlc lists them among the enums
        self.overrides = overrides
        self.base = POSTGRES if self.engine == "postgresql" else MYSQL
        self.driver = driver
        self.model_type = model_type
        self.psycopg = driver in ("psycopg", "psycopg-sync")  # the same types, sync or async
        if self.psycopg:
            self.base = PSYCOPG
        # composite type -> (class name, [(attribute, server type)]), from the types lock
        self.composites: dict[str, tuple[str, list[tuple[str, str]]]] = {}

    def enum_class(self, sql_name: str) -> str:
        return pascal(sql_name)

    def scalar(self, col: Column, type_name: str | None = None) -> PyType | None:
        """The element type of `col` (ignoring arrays and NULL), None when unknown."""
        name = (type_name or col.type.name).lower()
        for ov in self.overrides:
            qualified = f"{col.table}.{col.original_name or col.name}"
            if ov.column and col.table and ov.column == qualified:
                return ov.typed(col)
            if ov.db_type and ov.db_type.lower() == name:
                return ov.typed(col)
        if name in self.set_types:
            return MYSQL_SET
        if name in self.enums:
            cls = self.enum_class(name)
            by_value = enum_lookup(cls)  # models.py's dict: ~20x cheaper than cls(value)
            return _t(
                cls,
                f"from .models import {cls}",
                f"from .models import {by_value}",
                decode=f"{by_value}[{{}}]",
                driver_type="str",
            )
        if name in self.composites and not self.psycopg:  # psycopg: text, unregistered
            cls = self.composites[name][0]
            *imports, encode = COMPOSITE_ENCODE[self.model_type]
            return _t(
                cls,
                f"from .models import {cls}",
                *imports,
                decode=f"{cls}.from_record({{}})",
                encode=encode,
            )
        if self.engine == "mysql" and name == "tinyint" and col.length == 1:
            return MYSQL_BOOL
        py = self.declared(name)
        if py is not None and py.annotation == "JSON" and self.model_type == "pydantic":
            return replace(py, imports=py.imports - {JSON_IMPORT} | {PYDANTIC_JSON_IMPORT})
        return py

    def declared(self, name: str) -> PyType | None:
        """The engine's type of a type name, None when unknown."""
        return self.base.get(name)

    def column(self, col: Column, where: str, type_name: str | None = None) -> PyType:
        py = self.scalar(col, type_name)
        if py is None and type_name is not None:
            py = self.scalar(col)  # the server's name unknown (a domain?): sqlc's may do
        if py is None:
            shown = type_name or col.type.name or "unknown"
            message = (
                f"{where}: column {col.name!r} has type {shown!r} that the plugin cannot map; "
                f"add an override (options.overrides: db_type or column -> py_type)"
            )
            if self.warn is None:
                raise CodegenError(message)
            self.warn(message)  # typed Any where the option allow accepts it
            return ANY
        if col.is_sqlc_slice:  # the list itself is never NULL: an empty one matches no row
            return py.listed()
        if col.is_array or col.array_dims > 0:
            py = py.listed()
        return py if col.not_null else py.optional()
