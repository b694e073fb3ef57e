"""SQLite's Python types through sqlite3/aiosqlite: a declared type's affinity
(sqlite_types.affinity) says what comes back; a few declared names say more, converted
both ways."""

from __future__ import annotations

from .pytypes import BYTES, FLOAT, INT, JSON_TEXT, STR, PyType, TypeMapper
from .sqlite_types import affinity

SQLITE_AFFINITY: dict[str, PyType] = {
    "INTEGER": INT,
    "TEXT": STR,
    "BLOB": BYTES,
    "REAL": FLOAT,
    "NUMERIC": PyType("int | float"),  # a numeric-looking value as INTEGER or REAL
}
# written with a space, as SQLite writes its own (CURRENT_TIMESTAMP, datetime()): text
# compares then, `created_at >= @since` (isoformat()'s `T` sorts after every space)
_ISO_DATETIME = PyType(
    "datetime.datetime",
    frozenset({"import datetime"}),
    decode="datetime.datetime.fromisoformat({})",
    encode="{}.isoformat(' ')",
    driver_type="str",
)
SQLITE: dict[str, PyType] = {
    **dict.fromkeys(["boolean", "bool"], PyType("bool", decode="bool({})", driver_type="int")),
    "date": PyType(
        "datetime.date",
        frozenset({"import datetime"}),
        decode="datetime.date.fromisoformat({})",
        encode="{}.isoformat()",
        driver_type="str",
    ),
    **dict.fromkeys(["datetime", "timestamp"], _ISO_DATETIME),
    "json": JSON_TEXT,
}
# no declared type (a typeless column, an expression sqlc cannot type): any storage class
SQLITE_ANY = PyType("int | float | str | bytes")


def sqlite_type(declared: str) -> PyType:
    """A SQLite declared type by its affinity; no declaration (sqlc's `any`): a value of
    any storage class, said so rather than `Any`."""
    if declared in ("", "any"):
        return SQLITE_ANY
    return SQLITE_AFFINITY[affinity(declared)]


class SqliteTypeMapper(TypeMapper):
    """The mapper for `engine: sqlite`: the names above, any other by its affinity."""

    def declared(self, name: str) -> PyType | None:
        return SQLITE.get(name) or sqlite_type(name)
