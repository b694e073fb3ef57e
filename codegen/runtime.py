"""What generated repository code imports at run time, and nothing else.

Generated modules import only this module (plus the drivers), so a project that installs
the plugin's wheel needs no other code of ours. Every alias here evaluates at run time
(`typing.get_type_hints` works on every generated function); a driver that is not
installed is simply not referred to (a MySQL-only project needs no asyncpg).
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, Union

import orjson

JSON: TypeAlias = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

    PgConn: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]
else:  # asyncpg's classes are generic only for type checkers
    try:
        import asyncpg
        from asyncpg.pool import PoolConnectionProxy

        PgConn = Union[asyncpg.Connection, PoolConnectionProxy]  # noqa: UP007
    except ImportError:  # a MySQL-only project
        PgConn = Any

MyConn: TypeAlias = Any  # aiomysql.Connection (aiomysql ships no type information)


@dataclass(slots=True)
class ExecResult:
    rows_affected: int
    last_insert_id: int | None


def status_rows(status: str) -> int:
    """Rows affected from asyncpg's command tag: 'UPDATE 3' -> 3, 'INSERT 0 2' -> 2."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


_MARKS = re.compile(r"%%|/\*SLICE:\w+\*/%s|%s")


@functools.cache
def _split(sql: str) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    """SQL text between placeholders, and for each placeholder whether it is a slice."""
    texts, is_slice, pos = [], [], 0
    for match in _MARKS.finditer(sql):
        if match.group(0) == "%%":
            continue
        texts.append(sql[pos : match.start()])
        is_slice.append(match.group(0) != "%s")
        pos = match.end()
    texts.append(sql[pos:])
    return tuple(texts), tuple(is_slice)


def expand_slices(sql: str, args: Sequence[Any]) -> tuple[str, list[Any]]:
    """MySQL `IN (sqlc.slice(x))`: one %s per element; an empty list matches no row (NULL).

    The generated code passes each slice argument as a list in its placeholder's place.
    """
    texts, is_slice = _split(sql)
    parts = [texts[0]]
    flat: list[Any] = []
    for value, sliced, text in zip(args, is_slice, texts[1:], strict=True):
        if sliced:
            items = list(value)
            parts.append(", ".join(["%s"] * len(items)) if items else "NULL")
            flat.extend(items)
        else:
            parts.append("%s")
            flat.append(value)
        parts.append(text)
    return "".join(parts), flat


_SQLITE_MARKS = re.compile(r"/\*SLICE:\w+\*/\?|\?")


@functools.cache
def _split_sqlite(sql: str) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    texts, is_slice, pos = [], [], 0
    for match in _SQLITE_MARKS.finditer(sql):
        texts.append(sql[pos : match.start()])
        is_slice.append(match.group(0) != "?")
        pos = match.end()
    texts.append(sql[pos:])
    return tuple(texts), tuple(is_slice)


def expand_sqlite_slices(sql: str, args: Sequence[Any]) -> tuple[str, list[Any]]:
    """SQLite `IN (sqlc.slice(x))`: one `?` per element, each value bound (never spliced
    into the text); an empty list matches no row (NULL). The generated SQL's `?` are
    unnumbered (codegen's plan), one argument each, a slice's as a list."""
    texts, is_slice = _split_sqlite(sql)
    parts = [texts[0]]
    flat: list[Any] = []
    for value, sliced, text in zip(args, is_slice, texts[1:], strict=True):
        if sliced:
            items = list(value)
            parts.append(", ".join(["?"] * len(items)) if items else "NULL")
            flat.extend(items)
        else:
            parts.append("?")
            flat.append(value)
        parts.append(text)
    return "".join(parts), flat


def utc(value: datetime.datetime) -> datetime.datetime:
    """MySQL DATETIME holds UTC without a zone; give it back tz-aware."""
    return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value


def naive_utc(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given; pass a tz-aware datetime (UTC is stored)")
    return value.astimezone(datetime.UTC).replace(tzinfo=None)


def mysql_time(value: datetime.timedelta) -> str:
    """A MySQL TIME literal, sign first: timedelta keeps a negative value's sign in its
    days alone (-1 s is days=-1, seconds=86399), so the magnitude is split, not the value."""
    sign, magnitude = ("-", -value) if value < datetime.timedelta(0) else ("", value)
    minutes, seconds = divmod(magnitude.seconds, 60)
    hours = magnitude.days * 24 + minutes // 60
    text = f"{sign}{hours:02d}:{minutes % 60:02d}:{seconds:02d}"
    return f"{text}.{magnitude.microseconds:06d}" if magnitude.microseconds else text


def json_loads(value: str | bytes) -> JSON:
    result: JSON = orjson.loads(value)
    return result


def json_dumps(value: JSON) -> str:
    return orjson.dumps(value).decode()


def mysql_set(value: str | set[str] | frozenset[str]) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(v for v in value.split(",") if v)
    return frozenset(value)


K = TypeVar("K", bound=str)  # a sorted list's keys: its generated Literal
A = TypeVar("A")  # its `after` position: the generated tuple type (None: offset paging only)


@dataclass(frozen=True, slots=True)
class SortKey:
    """A `fixup: sort` key of a generated list: its row attribute, what its values are
    (text, int, int64, decimal, time, date, uuid, bool or other), whether they can be NULL,
    and its directions."""

    field: str
    kind: str
    nullable: bool
    directions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Sorting(Generic[K, A]):
    """A generated sorted list: its keys (the first is the default), its tie-breaker's row
    attribute and kind, and whether it pages by keyset (the function then takes `after`)."""

    keys: dict[K, SortKey]
    tie: str | None
    tie_kind: str | None
    keyset: bool
