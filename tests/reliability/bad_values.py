"""Bad values for every input an OpenAPI document declares, derived from the document so a
new field or parameter is covered the day it is added: what each must be refused with is a
400 naming it (docs/api.md, "JSON values").

- every body property: a boolean where the schema has no boolean, a numeric string where it
  has an integer or a number, a number or "true" where it has a boolean, NUL and a lone
  surrogate where it has a string;
- every query and path parameter: NUL (`%00`);
- every header parameter: bytes that are not UTF-8 (the server reads them as lone
  surrogates)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

NUL = "a\x00b"
LONE_SURROGATE = b'"x\\ud800"'  # JSON text: no encoder writes one


@dataclass(frozen=True)
class Bad:
    what: str
    field: str
    body: bytes = b""  # a JSON body, for a body property
    query: str = ""  # the query string, for a query parameter
    path: str = ""  # the concrete path with this parameter replaced, for a path one
    header: bytes = b""  # the raw value, for a header parameter


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def json_types(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The JSON types a property's schema allows (anyOf/oneOf members and $refs followed;
    an enum without a type is a string enum)."""
    schema = resolve(document, schema)
    found: set[str] = set()
    for member in schema.get("anyOf", []) + schema.get("oneOf", []):
        found |= json_types(document, member)
    kind = schema.get("type")
    if isinstance(kind, list):
        found |= set(kind)
    elif kind:
        found.add(kind)
    elif "enum" in schema or "const" in schema:
        found.add("string")
    return found


def body_schema(document: dict[str, Any], op: dict[str, Any]) -> dict[str, Any] | None:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    return None if content is None else resolve(document, content["schema"])


def body_values(document: dict[str, Any], op: dict[str, Any]) -> list[Bad]:
    schema = body_schema(document, op)
    if schema is None:
        return []
    bad = []
    for name, prop in schema.get("properties", {}).items():
        types = json_types(document, prop)
        values: list[tuple[str, bytes]] = []
        if "boolean" not in types:
            values += [("true", b"true"), ("false", b"false")]
        if types & {"integer", "number"}:
            values += [("a numeric string", b'"1"'), ("a decimal string", b'"2.5"')]
        if "boolean" in types:
            values += [("1", b"1"), ('"true"', b'"true"')]
        if "string" in types:
            values += [("NUL", orjson.dumps(NUL)), ("a lone surrogate", LONE_SURROGATE)]
        for what, value in values:
            body = b'{"' + name.encode() + b'": ' + value + b"}"
            bad.append(Bad(f"{name}: {what}", name, body=body))
    return bad


def parameter_values(template: str, path: str, op: dict[str, Any]) -> list[Bad]:
    """`path` is `template` made concrete (ids filled in): a path parameter's bad value
    replaces the segment where the template has its `{name}`."""
    bad = []
    for parameter in op.get("parameters", []):
        name, where = parameter["name"], parameter["in"]
        if where == "query":
            bad.append(Bad(f"query {name}: NUL", name, query=f"{name}=a%00b"))
        elif where == "path":
            segments = template.split("/")
            index = segments.index(f"{{{name}}}")
            concrete = path.split("/")
            concrete[index] = "a%00b"
            bad.append(Bad(f"path {name}: NUL", name, path="/".join(concrete)))
        elif where == "header":
            bad.append(Bad(f"header {name}: not UTF-8", name, header=b'"\xed\xa0\x80"'))
    return bad


def named(problem: dict[str, Any], field: str) -> bool:
    """The problem names `field` (a union's member may follow: `price.decimal`)."""
    return any(
        e["field"] == field or e["field"].startswith(f"{field}.") for e in problem.get("errors", [])
    )


async def raw_request(
    url: str, method: str, headers: dict[str, bytes], body: bytes = b""
) -> tuple[int, dict[str, Any] | None]:
    """One HTTP/1.1 request with header values sent as given, bytes no client library
    lets through; returns the status and the JSON body (None when not JSON)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method} {target} HTTP/1.1".encode(), f"Host: {parts.netloc}".encode()]
        lines += [name.encode() + b": " + value for name, value in headers.items()]
        lines += [b"Content-Type: application/json", f"Content-Length: {len(body)}".encode()]
        writer.write(b"\r\n".join([*lines, b"Connection: close", b"", b""]) + body)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        return status, orjson.loads(payload)
    except orjson.JSONDecodeError:
        return status, None
