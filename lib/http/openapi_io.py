"""What an operation reads and returns besides JSON, declared once for handler and document.

A handler that reads a multipart form, a header, or answers with bytes names it here, in a
constant it also uses itself (the form's field and size limit, the header's name), and
`@operation(form=..., headers=..., produces=...)` puts the same constant in the OpenAPI
document: a client generated from it sends what the handler reads (ADR 0024).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
ME_OR_UUID: dict[str, Any] = {
    "type": "string",
    "pattern": f"^(me|{UUID_PATTERN})$",
    "description": "A user's id, or `me`: the caller.",
}


@dataclass(frozen=True)
class Form:
    """A multipart/form-data body with one file field (`field`) of `media_types`, at most
    `max_bytes` long."""

    field: str
    media_types: tuple[str, ...]
    max_bytes: int
    description: str = ""

    def request_body(self) -> dict[str, Any]:
        part = {
            "type": "string",
            "format": "binary",
            "description": f"{self.description} At most {self.max_bytes} bytes.".strip(),
        }
        schema = {"type": "object", "required": [self.field], "properties": {self.field: part}}
        encoding = {self.field: {"contentType": ", ".join(self.media_types)}}
        return {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema, "encoding": encoding}},
        }


@dataclass(frozen=True)
class Header:
    """A request header the handler reads (beyond Authorization, If-Match, Idempotency-Key,
    which the operation's access, `if_match` and `idempotent` declare)."""

    name: str
    description: str
    required: bool = False

    def parameter(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": "header",
            "required": self.required,
            "schema": {"type": "string"},
            "description": self.description,
        }


def binary_content(media_types: tuple[str, ...]) -> dict[str, Any]:
    """The `content` of a response that is the bytes of a file of one of `media_types`."""
    return {media: {"schema": {"type": "string", "format": "binary"}} for media in media_types}


def path_schema(name: str, me: bool) -> dict[str, Any]:
    """`{id}`/`{x_id}` are UUIDs (`me` too when the operation says so), others text."""
    if me and name == "id":
        return dict(ME_OR_UUID)
    if name == "id" or name.endswith("_id"):
        return {"type": "string", "format": "uuid"}
    return {"type": "string"}


def tag_objects(paths: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The top-level tags, each described by the summaries of its operations."""
    summaries: dict[str, list[str]] = {}
    for item in paths.values():
        for operation in item.values():
            for tag in operation.get("tags", []):
                summaries.setdefault(tag, []).append(operation["summary"])
    return [
        {"name": tag, "description": "; ".join(sorted(summaries[tag])) + "."}
        for tag in sorted(summaries)
    ]
