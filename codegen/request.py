"""The parts of sqlc's GenerateRequest (as sqlc's JSON shape, protocol.py) that we use."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any


def qualified(schema: str | None, name: str) -> str:
    """`name` in the default schema (SQLite's is `main`), else `schema.name`: tables and
    types are keyed so."""
    return name if schema in (None, "", "public", "pg_catalog", "main") else f"{schema}.{name}"


def _rel(raw: dict[str, Any] | None) -> str | None:
    return qualified(raw.get("schema"), raw["name"]) if raw else None


@dataclass(frozen=True, slots=True)
class TypeRef:
    schema: str
    name: str


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    not_null: bool
    is_array: bool
    array_dims: int
    length: int
    unsigned: bool
    is_func_call: bool
    type: TypeRef
    table: str | None
    original_name: str
    is_sqlc_slice: bool
    embed_table: str | None
    is_named_param: bool = False

    @staticmethod
    def parse(raw: dict[str, Any]) -> Column:
        type_ = raw.get("type") or {}
        return Column(
            name=raw.get("name", ""),
            not_null=bool(raw.get("not_null")),
            is_array=bool(raw.get("is_array")),
            array_dims=int(raw.get("array_dims") or 0),
            length=int(raw.get("length", -1)),
            unsigned=bool(raw.get("unsigned")),
            is_func_call=bool(raw.get("is_func_call")),
            type=TypeRef(
                type_.get("schema", ""),
                qualified(type_.get("schema"), type_.get("name", "")).removeprefix("pg_catalog."),
            ),
            table=_rel(raw.get("table") or None),
            original_name=raw.get("original_name", ""),
            is_sqlc_slice=bool(raw.get("is_sqlc_slice")),
            embed_table=_rel(raw.get("embed_table") or None),
            is_named_param=bool(raw.get("is_named_param")),
        )


@dataclass(frozen=True, slots=True)
class Param:
    number: int
    column: Column


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    cmd: str
    text: str
    filename: str
    columns: list[Column]
    params: list[Param]
    insert_into_table: str | None
    comments: tuple[str, ...] = ()  # the comment lines after `-- name:`, without `--`


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: list[Column]


@dataclass(frozen=True, slots=True)
class Enum:
    name: str
    values: list[str]


@dataclass(frozen=True, slots=True)
class Request:
    engine: str
    queries: list[Query]
    tables: dict[str, Table]
    enums: dict[str, Enum]
    options: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def parse(raw: dict[str, Any]) -> Request:
        tables: dict[str, Table] = {}
        enums: dict[str, Enum] = {}
        for schema in raw["catalog"].get("schemas", []):
            if schema.get("name") in ("pg_catalog", "information_schema"):
                continue
            for t in schema.get("tables") or []:
                cols = [Column.parse(c) for c in t.get("columns") or []]
                name = qualified(schema.get("name"), t["rel"]["name"])
                tables[name] = Table(name, cols)
            for e in schema.get("enums") or []:
                name = qualified(schema.get("name"), e["name"])
                enums[name] = Enum(name, list(e.get("vals") or []))
        queries = [
            Query(
                name=q["name"],
                cmd=q["cmd"],
                text=q["text"],
                filename=q.get("filename", ""),
                columns=[Column.parse(c) for c in q.get("columns") or []],
                params=[
                    Param(int(p["number"]), Column.parse(p["column"]))
                    for p in q.get("params") or []
                ],
                insert_into_table=_rel(q.get("insert_into_table") or None),
                comments=tuple(q.get("comments") or ()),
            )
            for q in raw.get("queries") or []
        ]
        options_b64 = raw.get("plugin_options") or ""
        options = json.loads(base64.b64decode(options_b64)) if options_b64 else {}
        return Request(raw["settings"]["engine"], queries, tables, enums, options)
