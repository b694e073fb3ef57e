"""PATCH bodies: an absent field keeps its value, `null` clears a nullable one.

`coalesce(sqlc.narg(x), x)` cannot tell "absent" from "null", so a nullable column could
never be cleared. The pattern (docs/recipes.md, "A nullable PATCH field"):

    class ListingPatch(PatchModel):
        title: Title | Keep = None        # required column: may be absent, never null
        note: Note | None = None          # nullable column: null clears it

    -- name: UpdateListing :one
    UPDATE listings
    SET title = coalesce(sqlc.narg(title), title),
        note = CASE WHEN sqlc.arg(set_note)::bool THEN sqlc.narg(note) ELSE note END
    WHERE id = @id RETURNING *;
    -- MySQL: note = IF(sqlc.arg(set_note), sqlc.narg(note), note)

    body = await parse_body(request, ListingPatch)
    row = await q.update_listing(conn, id=listing_id, **patch_args(body))
"""

from __future__ import annotations

import types
from typing import Any, TypeAlias, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

# `X | Keep = None`: the field may be left out (keeps the column) but is never null; the
# OpenAPI document shows plain X.
Keep: TypeAlias = SkipJsonSchema[None]


def is_nullable(model: type[BaseModel], name: str) -> bool:
    """True for a field typed `X | None` (null clears), False for `X | Keep` and plain X."""
    annotation = model.model_fields[name].annotation
    if get_origin(annotation) not in (Union, types.UnionType):
        return annotation is type(None)
    return type(None) in get_args(annotation)


def _document(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """At least one property; no `default: null` claimed for the fields that refuse null."""
    schema["minProperties"] = 1
    for name, prop in schema.get("properties", {}).items():
        if name in model.model_fields and not is_nullable(model, name):
            prop.pop("default", None)


class PatchModel(BaseModel):
    """Base of PATCH bodies: unknown fields refused, at least one field, and `null` only
    for the fields typed `X | None`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_document)

    # "after": a before-validator would hand the value on as a Python object, and the
    # strict validation of bodies (lib/http/body.py) takes a UUID, a time or a decimal
    # from a JSON string only. A default is never validated: None here was sent.
    @field_validator("*", mode="after")
    @classmethod
    def _null_only_where_nullable(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name and not is_nullable(cls, info.field_name):
            raise ValueError("may not be null (leave the field out to keep its value)")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> PatchModel:
        if not self.model_fields_set:
            raise ValueError(f"give at least one of: {', '.join(type(self).model_fields)}")
        return self


def patch_args(body: BaseModel) -> dict[str, Any]:
    """Keyword arguments for the generated UPDATE: `field=value` for every field (None when
    absent: coalesce keeps the column), plus `set_field=<was it in the body>` for each
    nullable field (the CASE / IF takes the value, null included, only when set)."""
    args: dict[str, Any] = {}
    for name in type(body).model_fields:
        args[name] = getattr(body, name)
        if is_nullable(type(body), name):
            args[f"set_{name}"] = name in body.model_fields_set
    return args
