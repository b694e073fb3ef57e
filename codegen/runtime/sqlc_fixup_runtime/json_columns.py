"""What code generated for a typed JSON column imports (an override with `json: true`): the
column's JSON decoded into its model type on read and encoded from it on write. A module of
its own: it needs msgspec (dataclasses, TypedDicts, attrs classes and Structs are converted
by msgspec; pydantic models validate themselves), which other generated code does not."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
import orjson

T = TypeVar("T")


class JSONColumnError(ValueError):
    """A column's JSON that does not match the model type its override names."""


def loads(value: object, cls: type[T], column: str) -> T:
    """`value` (the driver's JSON text, or the document it already decoded) as a `cls`;
    anything that does not fit is a JSONColumnError naming the column."""
    try:
        data = orjson.loads(value) if isinstance(value, str | bytes) else value
        validate: Any = getattr(cls, "model_validate", None)  # a pydantic model
        if validate is not None:
            result: T = validate(data)
            return result
        return msgspec.convert(data, cls)
    except (ValueError, msgspec.ValidationError) as exc:  # pydantic's error is a ValueError
        name = getattr(cls, "__name__", str(cls))
        raise JSONColumnError(f"column {column}: the JSON is not a {name}: {exc}") from exc


def dumps(value: object) -> str:
    """A model value as JSON text (every driver takes json/jsonb/MySQL JSON as text)."""
    dump: Any = getattr(value, "model_dump", None)  # a pydantic model
    data = dump(mode="json") if dump is not None else msgspec.to_builtins(value)
    return orjson.dumps(data).decode()
