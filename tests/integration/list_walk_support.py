"""The list walk's parts (tests/integration/test_list_walk.py): the lists a served OpenAPI
document declares, the value classes of their filters, a walk by `page` and by cursor, and
what `meta` must say about the rows walked.

Every check appends what it found wrong to a list, so one run names every defect."""

from __future__ import annotations

import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

# the list parameters every list shares; any other query parameter is a filter
COMMON = {"limit", "page", "orderby", "sort", "cursor"}
# what carries `meta.next_cursor` back, the first one a list declares (chat's messages
# take `before`: "continues in the same direction")
CONTINUES = ("cursor", "before")
# the other direction from a row's own `cursor` (chat's messages: oldest first)
BACKWARD = "after"
# meta keys that are the page's, not an aggregate of its rows
PAGE_META = {"total", "limit", "page", "next_cursor", "degraded"}
NO_MATCH_TEXT = "zqxjvwalk"
BIG = 1000  # the largest page: every list here is filled with fewer rows
WHOLE = "all"  # the value of a defaulted enum filter that shows every row (`state=all`)


@dataclass(frozen=True)
class Listed:
    service: str
    template: str  # the path, with {id}
    access: dict[str, Any] | None  # x-access; None: public
    keys: list[str]  # orderby's values, the first the default ([]: no orderby)
    sorts: list[str]  # sort's values ([]: no sort)
    defaults: dict[str, Any]  # the declared defaults of limit, sort
    filters: dict[str, dict[str, Any]]  # name -> schema
    continues: str | None  # the parameter that takes meta.next_cursor
    paged: bool  # takes `page`
    backward: bool  # takes `after`: from a row's cursor the other way
    fallback: dict[str, str] = field(default_factory=dict)  # key -> key of rows without it
    # a filter only some roles may give (its `x-roles`: an archiving list's `state`)
    roles: dict[str, list[str]] = field(default_factory=dict)
    # a filter's declared default: what the list does without it
    filter_defaults: dict[str, str] = field(default_factory=dict)

    @property
    def widest(self) -> dict[str, str]:
        """The filter values that show every row (an archiving list's `state=all`, ADR
        0058): the rows every other value's rows are among."""
        return {
            name: WHOLE
            for name, schema in self.filters.items()
            if name in self.filter_defaults and WHOLE in _choices(schema)
        }

    @property
    def name(self) -> str:
        return f"{self.service} GET {self.template}"


def _choices(schema: dict[str, Any]) -> list[Any]:
    """An enum's values (through anyOf/null), else []."""
    for option in schema.get("anyOf", [schema]):
        if "enum" in option:
            return list(option["enum"])
        if "const" in option:
            return [option["const"]]
    return []


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema with its `$ref`s (also inside anyOf) followed."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _resolve(spec["components"]["schemas"][name], spec)
    if "anyOf" in schema:
        return {**schema, "anyOf": [_resolve(s, spec) for s in schema["anyOf"]]}
    return schema


def lists_of(service: str, spec: dict[str, Any]) -> list[Listed]:
    """Every GET of the document that takes `limit`: a list."""
    found = []
    for path, methods in spec["paths"].items():
        op = methods.get("get")
        params = {p["name"]: p for p in (op or {}).get("parameters", []) if p["in"] == "query"}
        if op is None or "limit" not in params:
            continue
        schemas = {n: _resolve(p["schema"], spec) for n, p in params.items()}
        filters = {n for n in schemas if n not in {*COMMON, *CONTINUES, BACKWARD}}
        roles = {
            n: params[n]["schema"]["x-roles"] for n in filters if "x-roles" in params[n]["schema"]
        }
        filter_defaults = {
            n: str(params[n]["schema"]["default"])
            for n in filters
            if params[n]["schema"].get("default") is not None
        }
        keys = _choices(schemas["orderby"]) if "orderby" in params else []
        doc = params.get("orderby", {}).get("description", "")
        fallback = {  # "last_message_at (no message yet: created_at)"
            k: m.group(1) for k in keys if (m := re.search(rf"{k} \(no [^:]*: (\w+)\)", doc))
        }
        found.append(
            Listed(
                service,
                path,
                op.get("x-access"),
                keys,
                _choices(schemas["sort"]) if "sort" in params else [],
                {n: schemas[n].get("default") for n in ("limit", "sort") if n in params},
                {n: s for n, s in schemas.items() if n in filters},
                next((c for c in CONTINUES if c in params), None),
                "page" in params,
                BACKWARD in params,
                fallback,
                roles,
                filter_defaults,
            )
        )
    return found


def kind_of(schema: dict[str, Any]) -> str:
    """boolean | enum | uuid | integer | text, of a filter's schema."""
    if _choices(schema):
        return "enum"
    options = schema.get("anyOf", [schema])
    types = {o.get("type") for o in options} - {"null", None}
    formats = {o.get("format") for o in options}
    if "boolean" in types:
        return "boolean"
    if "integer" in types or "number" in types:
        return "integer"
    return "uuid" if "uuid" in formats else "text"


def filter_values(name: str, schema: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """Each value class of a filter as query text: true and false, every enum value, 0,
    empty, no match, some match (a value of the rows' field of that name, or a word of
    theirs for a text search). A class the type cannot take must answer 400."""
    kind = kind_of(schema)
    values = ["0", ""]
    if kind == "boolean":
        values += ["true", "false"]
    elif kind == "enum":
        values += [str(v) for v in _choices(schema)]
    elif kind == "uuid":
        values += [str(uuid.uuid4())]
        values += sorted({str(r[name]) for r in rows if r.get(name) is not None})[:2]
    elif kind == "integer":
        values += sorted({str(r[name]) for r in rows if r.get(name) is not None})[:2]
    else:
        values += [NO_MATCH_TEXT, *words(rows)[:2]]
    return list(dict.fromkeys(values))


def words(rows: list[dict[str, Any]]) -> list[str]:
    """Words of the rows' text that are not ids, times or codes: what a search finds."""
    found: dict[str, None] = {}
    for row in rows:
        for value in row.values():
            if isinstance(value, str) and " " in value:
                for word in re.findall(r"[A-Za-z]{4,}", value):
                    found.setdefault(word.lower())
    return list(found)


def unique_key(rows: list[dict[str, Any]], keys: list[str]) -> str:
    """`id` when the rows have one, else the list's only key (a currency's code)."""
    return "id" if not rows or "id" in rows[0] else keys[0]


def key_value(row: dict[str, Any], key: str, fallback: str | None) -> Any:
    value = row.get(key)
    return row.get(fallback) if value is None and fallback else value


def tie_errors(
    rows: list[dict[str, Any]], key: str, fallback: str | None, unique: str, desc: bool
) -> list[str]:
    """Rows with the same sort value must follow their unique key in the same direction."""
    wrong = []
    for before, after in itertools.pairwise(rows):
        if key_value(before, key, fallback) != key_value(after, key, fallback):
            continue
        a, b = str(before[unique]), str(after[unique])
        if (a < b) if desc else (a > b):
            wrong.append(f"tie on {key}={key_value(before, key, fallback)}: {a} before {b}")
    return wrong


def as_decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def average(values: list[Any]) -> Decimal | None:
    """docs/api.md: averages are rounded half-up to 2 places."""
    present = [Decimal(str(v)) for v in values if v is not None]
    if not present:
        return None
    mean = sum(present, Decimal(0)) / len(present)
    return mean.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def aggregate_errors(meta: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """`meta.total` and every aggregate of `meta` against the rows: `avg_<field>` the
    average of the field; `statistics` its count and each field's min, max and avg."""
    wrong = []
    if "total" in meta and meta["total"] != len(rows):
        wrong.append(f"meta.total {meta['total']} for {len(rows)} rows")
    for name, value in meta.items():
        if name in PAGE_META:
            continue
        if name.startswith("avg_"):
            want = average([r[name[4:]] for r in rows])
            if as_decimal(value) != want:
                wrong.append(f"meta.{name} {value}, rows give {want}")
        elif name == "statistics":
            wrong += statistics_errors(value, rows)
        else:
            wrong.append(f"meta.{name}: an aggregate the walk cannot check (add it here)")
    return wrong


def statistics_errors(stats: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    wrong = []
    if stats["count"] != len(rows):
        wrong.append(f"meta.statistics.count {stats['count']} for {len(rows)} rows")
    for name, got in stats.items():
        if name == "count":
            continue
        values = [r[name] for r in rows if r.get(name) is not None]
        want = {
            "min": min((Decimal(str(v)) for v in values), default=None),
            "max": max((Decimal(str(v)) for v in values), default=None),
            "avg": average(values),
        }
        for part, expected in want.items():
            if as_decimal(got[part]) != expected:
                wrong.append(f"meta.statistics.{name}.{part} {got[part]}, rows give {expected}")
    return wrong


def dump(rows: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(r, sort_keys=True) for r in rows]


async def get(client: Any, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    resp = await client.get(path, headers=headers)
    body = await resp.json() if resp.status != 304 else None
    return resp.status, body


def url(path: str, params: dict[str, str]) -> str:
    return f"{path}?{urlencode(params)}" if params else path


async def walk_pages(
    client: Any,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
    limit: int,
    whole: list[dict[str, Any]],
) -> list[str]:
    """Every page of `limit` rows by `page`, each page's meta checked; what is wrong."""
    wrong: list[str] = []
    walked: list[dict[str, Any]] = []
    for page in range(1, len(whole) // limit + 3):  # bounded: one more than the rows need
        status, body = await get(
            client, url(path, {**params, "limit": str(limit), "page": str(page)}), headers
        )
        if status != 200:
            return [f"page {page}: {status} {body}"]
        walked += body["data"]
        meta = body["meta"]
        if (meta.get("page"), meta.get("limit")) != (page, limit):
            wrong.append(f"page {page}: meta {meta}")
        wrong += [f"page {page}: {w}" for w in aggregate_errors(meta, whole)]
        if len(body["data"]) < limit:
            break
    return wrong + order_errors(walked, whole, "by page")


async def walk_cursor(
    client: Any,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
    limit: int,
    whole: list[dict[str, Any]],
    param: str,
) -> list[str]:
    """Every page of `limit` rows following meta.next_cursor; what is wrong."""
    wrong: list[str] = []
    walked: list[dict[str, Any]] = []
    after: dict[str, str] = {}
    for n in range(len(whole) // limit + 3):
        status, body = await get(
            client, url(path, {**params, "limit": str(limit), **after}), headers
        )
        if status != 200:
            return [f"cursor page {n + 1}: {status} {body}"]
        walked += body["data"]
        meta = body["meta"]
        if meta.get("limit") != limit or (n > 0 and "page" in meta):  # page 1: no cursor yet
            wrong.append(f"cursor page {n + 1}: meta {meta}")
        wrong += [f"cursor page {n + 1}: {w}" for w in aggregate_errors(meta, whole)]
        if meta["next_cursor"] is None:
            break
        after = {param: meta["next_cursor"]}
    else:
        wrong.append(f"by {param}: still a next_cursor after every row")
    return wrong + order_errors(walked, whole, f"by {param}")


def order_errors(walked: list[dict[str, Any]], whole: list[dict[str, Any]], how: str) -> list[str]:
    """The same rows in the same order as one large page: none twice, none missing."""
    got, want = dump(walked), dump(whole)
    if got == want:
        return []
    twice = len(got) - len(set(got))
    missing = len(set(want) - set(got))
    return [f"{how}: {len(got)} rows ({twice} twice, {missing} missing) for {len(want)}"]


async def walk_backward(
    client: Any, path: str, headers: dict[str, str], limit: int, whole: list[dict[str, Any]]
) -> list[str]:
    """From the last row's own `cursor`, `after` walks the rest the other way."""
    start = {BACKWARD: whole[-1]["cursor"]}
    wrong = await walk_cursor(client, path, start, headers, limit, whole[-2::-1], BACKWARD)
    return [f"from the last row: {e}" for e in wrong]
