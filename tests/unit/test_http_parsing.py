"""lib.http parsing and rendering: parse_body through the real middleware chain,
parse_list, If-Match, jsonio, the error middleware, request ids, security headers."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

import asyncpg.pgproto.pgproto as pgproto
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request
from pydantic import BaseModel, ConfigDict, Field

from lib.config import ServiceSettings
from lib.errors import FieldError, PreconditionFailed, PreconditionRequired, ValidationFailed
from lib.http import listing as listing_module
from lib.http.app import create_app
from lib.http.body import MAX_BODY, body_deadline, parse_body
from lib.http.etag import etag, if_match_version, stale
from lib.http.fields import UNSTORABLE_MESSAGE
from lib.http.jsonio import data, decimal_text, dumps, json_response
from lib.http.listing import ListQuery, Page, like_pattern, parse_list
from tests.problems import problem

# --- the app under test ---


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")
    city: str = Field(min_length=1)


class ThingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=50)
    qty: int = Field(ge=1)
    address: Address | None = None


routes = web.RouteTableDef()


@routes.post("/things")
async def create_thing(request: web.Request) -> web.Response:
    thing = await parse_body(request, ThingIn, forbidden=frozenset({"role", "version"}))
    return data(thing, status=201)


@routes.get("/things")
async def list_things(request: web.Request) -> web.Response:
    page = parse_list(request, ("name", "created_at"))
    return json_response({"data": [], "meta": page.meta(0)})


@routes.patch("/things/{id}")
async def patch_thing(request: web.Request) -> web.Response:
    version = if_match_version(request)
    if version != 3:
        raise stale(3)
    return data({"version": version + 1}, headers={"ETag": etag(version + 1)})


@routes.get("/boom")
async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("password=hunter2 in postgresql://admin@db/secret")


Client = TestClient[web.Request, web.Application]
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> Client:
    settings = ServiceSettings(
        service="t", database_url="", rate_limit_ip_burst=100_000, rate_limit_ip_rate=10_000.0
    )
    return await aiohttp_client(create_app(settings, routes=routes, title="t"))


def fields(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["field"], e["message"]) for e in body.get("errors", [])]


# --- parse_body ---


async def test_body_ok(client: Client) -> None:
    resp = await client.post("/things", json={"name": "a", "qty": 2, "address": {"city": "X"}})
    assert resp.status == 201
    assert await resp.json() == {"data": {"name": "a", "qty": 2, "address": {"city": "X"}}}


async def test_body_json_with_charset_is_json(client: Client) -> None:
    resp = await client.post(
        "/things",
        data=b'{"name": "a", "qty": 1}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert resp.status == 201


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", None]
)
async def test_body_wrong_content_type_is_415(client: Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    resp = await client.post("/things", data=b'{"name": "a", "qty": 1}', headers=headers)
    body = await problem(resp, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert body["detail"] == "the body must be application/json"
    assert "errors" not in body


def padded(size: int) -> bytes:
    """A valid JSON object of exactly `size` bytes."""
    head = b'{"name": "a", "qty": 1}'
    return head[:-1] + b" " * (size - len(head)) + b"}"


async def test_body_of_exactly_1_mib_is_accepted(client: Client) -> None:
    payload = padded(MAX_BODY)
    assert len(payload) == MAX_BODY == 1024 * 1024
    resp = await client.post("/things", data=payload, headers=JSON)
    assert resp.status == 201, await resp.text()


async def test_chunked_body_over_1_mib_is_413(client: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 65536  # 1.25 MiB, no Content-Length

    resp = await client.post("/things", data=chunks(), headers=JSON)
    assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
    body = await problem(resp, 413, "PAYLOAD_TOO_LARGE")
    assert body["detail"] == "the body may be at most 1048576 bytes"


GZIP = {**JSON, "Content-Encoding": "gzip"}
TOO_BIG = f"the body may be at most {MAX_BODY} bytes"


@pytest.mark.parametrize(
    ("raw", "headers", "status", "detail"),
    [
        (b"not gzip", GZIP, 400, "the request body could not be decoded (its Content-Encoding)"),
        (gzip.compress(padded(MAX_BODY + 1)), GZIP, 413, TOO_BIG),
        (b'{"name":"\xff"}', JSON, 400, "the body is not valid JSON"),
    ],
    ids=["gzip that is not gzip", "gzip past the limit once inflated", "not UTF-8"],
)  # fmt: skip
async def test_a_body_aiohttp_or_the_parser_refuses_is_a_4xx_problem(
    client: Client, raw: bytes, headers: dict[str, str], status: int, detail: str
) -> None:
    """Issue 54: aiohttp's own refusals of a Content-Encoding are problems, never a 500."""
    resp = await client.post("/things", data=raw, headers=headers)
    assert (resp.status, resp.content_type) == (status, "application/problem+json")
    assert (await resp.json())["detail"] == detail


async def test_a_gzip_body_that_is_gzip_is_read(client: Client) -> None:
    resp = await client.post("/things", data=gzip.compress(b'{"name":"a","qty":1}'), headers=GZIP)
    assert (resp.status, await resp.json()) == (
        201,
        {"data": {"name": "a", "qty": 1, "address": None}},
    )


@pytest.mark.parametrize(
    "raw", [b"{bad", b"", b'{"name": "a",}', b"NaN", b"\xff\xfe", b'{"a": 1} trailing']
)
async def test_body_malformed_json_is_400(client: Client, raw: bytes) -> None:
    resp = await client.post("/things", data=raw, headers=JSON)
    body = await problem(resp, 400, "BAD_REQUEST")
    assert body["detail"] == "the body is not valid JSON"


@pytest.mark.parametrize("raw", [b"[1, 2]", b"null", b'"text"', b"42", b"true"])
async def test_body_not_an_object_is_400(client: Client, raw: bytes) -> None:
    resp = await client.post("/things", data=raw, headers=JSON)
    body = await problem(resp, 400, "VALIDATION_ERROR")
    assert body["detail"] == "the body must be a JSON object"


async def test_body_unknown_field_is_400(client: Client) -> None:
    resp = await client.post(
        "/things", json={"name": "a", "qty": 1, "colour": "red", "address": {"city": "X", "z": 1}}
    )
    body = await problem(resp, 400, "VALIDATION_ERROR")
    assert body["detail"] == "the body is invalid"
    assert fields(body) == [("address.z", "unknown field"), ("colour", "unknown field")]


async def test_body_forbidden_field_is_403(client: Client) -> None:
    resp = await client.post(
        "/things", json={"version": 9, "name": "a", "qty": 1, "role": "ADMIN", "other": 1}
    )
    body = await problem(resp, 403, "FORBIDDEN")  # checked before unknown fields
    assert body["detail"] == "you may not set: role, version"
    assert fields(body) == [
        ("role", "may not be set by the caller"),
        ("version", "may not be set by the caller"),
    ]


async def test_body_validation_lists_every_field(client: Client) -> None:
    resp = await client.post("/things", json={"name": "", "qty": 0, "address": {"city": 5}})
    body = await problem(resp, 400, "VALIDATION_ERROR")
    assert fields(body) == [
        ("name", "String should have at least 1 character"),
        ("qty", "Input should be greater than or equal to 1"),
        ("address.city", "Input should be a valid string"),
    ]


async def test_body_missing_fields(client: Client) -> None:
    resp = await client.post("/things", json={})
    body = await problem(resp, 400, "VALIDATION_ERROR")
    assert fields(body) == [("name", "Field required"), ("qty", "Field required")]


BODY_TIMEOUT = 0.2
MARGIN = 5.0  # a due timer fires well within this, even on a loaded machine


async def test_a_body_not_received_within_the_body_timeout_is_408(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    settings = ServiceSettings(
        service="t", database_url="", rate_limit_ip_burst=100_000, http_body_timeout=BODY_TIMEOUT
    )
    client = await aiohttp_client(create_app(settings, routes=routes, title="t"))
    release = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b'{"name": "a",'
        await release.wait()  # the rest only once the answer is in
        yield b' "qty": 1}'

    try:
        resp = await asyncio.wait_for(
            client.post("/things", data=stalled(), headers=JSON),
            BODY_TIMEOUT + MARGIN,
        )
    finally:
        release.set()
    body = await problem(resp, 408, "REQUEST_TIMEOUT")
    assert body["detail"] == "the request body was not received within 0.2 s"
    assert resp.headers["Connection"] == "close"


async def test_a_timeout_that_is_not_the_body_deadline_stays_a_timeout() -> None:
    with pytest.raises(TimeoutError):
        async with body_deadline(make_mocked_request("POST", "/things")):
            raise TimeoutError  # a bound of its own inside the block: not the client's 408


# --- parse_list ---

ORDER = ("name", "created_at")


@pytest.fixture(autouse=True)
def no_cached_pages() -> None:
    """Each test parses for itself: a page cached by an earlier test (or by mutmut's
    stats run in the process it forks from) would answer instead of the code under test."""
    listing_module._pages.clear()


def listing(query: str, model: type[ListQuery] = ListQuery, **kwargs: Any) -> Page:
    return parse_list(make_mocked_request("GET", f"/things?{query}"), ORDER, model, **kwargs)


def list_error(query: str, detail: str = "invalid query parameters") -> list[FieldError]:
    with pytest.raises(ValidationFailed) as info:
        listing(query)
    assert info.value.status == 400
    assert info.value.code == "VALIDATION_ERROR"
    assert info.value.detail == detail
    return info.value.errors


def test_list_defaults() -> None:
    page = listing("")
    assert (page.limit, page.page, page.orderby, page.sort, page.offset) == (
        100,
        1,
        "name",
        "asc",
        0,
    )
    assert page.meta(7) == {"total": 7, "limit": 100, "page": 1}
    assert isinstance(page.query, ListQuery)


class NewestFirst(ListQuery):
    """A list whose model declares `desc` the default: what its document says, it does."""

    sort: Literal["asc", "desc"] = Field("desc", description="Sort direction.")


def test_list_default_sort_and_explicit_values() -> None:
    assert listing("").sort == "asc"
    assert listing("", NewestFirst).sort == "desc"
    assert listing("sort=asc", NewestFirst).sort == "asc"
    page = listing("limit=1000&page=2&orderby=created_at&sort=desc")
    assert (page.limit, page.page, page.orderby, page.sort) == (1000, 2, "created_at", "desc")


@pytest.mark.parametrize(
    ("query", "offset"),
    [
        ("page=1&limit=25", 0),
        ("page=3&limit=25", 50),
        ("page=2", 100),
        ("limit=1&page=7", 6),
        ("page=1000000&limit=1000", 999_999_000),
    ],
)
def test_list_offset(query: str, offset: int) -> None:
    assert listing(query).offset == offset


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("limit=", "limit"),
        ("page=0", "page"),
        ("page=-3", "page"),
        ("page=x", "page"),
        ("page=1000001", "page"),
        ("sort=up", "sort"),
        ("sort=ASC", "sort"),
        ("sort=", "sort"),
    ],
)
def test_list_bad_value(query: str, field: str) -> None:
    errors = list_error(query)
    assert [e.field for e in errors] == [field]


@pytest.mark.parametrize(
    "value", ["email", "name;DROP TABLE x", "name desc", "NAME", "id", "created_at,name"]
)
def test_list_orderby_not_whitelisted(value: str) -> None:
    from urllib.parse import quote

    assert list_error(f"orderby={quote(value)}") == [
        FieldError("orderby", "must be one of: name, created_at")
    ]


def test_list_empty_orderby_is_400() -> None:
    assert [e.field for e in list_error("orderby=")] == ["orderby"]


def test_list_unknown_parameter() -> None:
    assert list_error("limit=5&colour=red") == [FieldError("colour", "unknown field")]


@pytest.mark.parametrize("query", ["limit=1&limit=2", "sort=asc&sort=asc", "x=1&x=2"])
def test_list_repeated_parameter(query: str) -> None:
    field = query.split("=")[0]
    assert list_error(query, "repeated query parameter") == [
        FieldError(field, "given more than once")
    ]


def test_list_several_errors_at_once() -> None:
    errors = list_error("limit=0&page=0&sort=up")
    assert [e.field for e in errors] == ["limit", "page", "sort"]


class ThingQuery(ListQuery):
    status: Literal["open", "closed"] | None = None


class NewestThing(ThingQuery):
    sort: Literal["asc", "desc"] = Field("desc", description="Sort direction.")


def test_list_resource_filters() -> None:
    page = listing("status=open&limit=5", ThingQuery)
    assert page.query.status == "open"
    assert page.limit == 5
    with pytest.raises(ValidationFailed) as info:
        listing("status=lost", ThingQuery)
    assert [e.field for e in info.value.errors] == ["status"]


def test_list_parse_is_cached_per_query_string_and_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same URL is parsed once; the key holds the model, whitelist and default sort;
    errors are not cached; the cache never grows past its bound (oldest out)."""
    monkeypatch.setattr(listing_module, "_pages", {})
    monkeypatch.setattr(listing_module, "PAGES_CACHED", 3)
    first = listing("limit=5&status=open", ThingQuery)
    assert listing("limit=5&status=open", ThingQuery) is first
    assert listing("limit=5&status=open", NewestThing).sort == "desc"
    with pytest.raises(ValidationFailed):
        listing("limit=5&status=open")  # ListQuery: status is unknown, whatever was cached
    assert len(listing_module._pages) == 2
    for n in range(1, 6):
        assert listing(f"limit={n}").limit == n
    assert len(listing_module._pages) == 3
    assert listing("limit=5&status=open", ThingQuery) is not first  # evicted, parsed again
    with pytest.raises(ValidationFailed):
        listing("limit=0")
    with pytest.raises(ValidationFailed):
        listing("orderby=evil")  # refused by the whitelist, after the model: not cached either
    assert all(key[2] not in {"limit=0", "orderby=evil"} for key in listing_module._pages)


async def test_list_errors_render_as_problem(client: Client) -> None:
    resp = await client.get("/things", params={"limit": "0", "orderby": "name"})
    body = await problem(resp, 400, "VALIDATION_ERROR")
    assert body["detail"] == "invalid query parameters"
    assert [f for f, _ in fields(body)] == ["limit"]
    resp = await client.get("/things?page=2&limit=10")
    assert await resp.json() == {"data": [], "meta": {"total": 0, "limit": 10, "page": 2}}


# --- If-Match / ETag ---


def if_match(value: str | None) -> int:
    headers = {"If-Match": value} if value is not None else {}
    return if_match_version(make_mocked_request("PATCH", "/things/1", headers=headers))


def test_if_match_missing_is_428() -> None:
    with pytest.raises(PreconditionRequired) as info:
        if_match(None)
    assert info.value.status == 428
    assert info.value.code == "PRECONDITION_REQUIRED"
    assert info.value.detail == "this request needs an If-Match header with the ETag"


@pytest.mark.parametrize(
    "value", ["3", '"abc"', '"3", "4"', "*", "W/3", '"-1"', '"1234567890"', "", '"3']
)
def test_if_match_malformed_is_400(value: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        if_match(value)
    assert info.value.detail == "malformed If-Match"
    assert info.value.errors == [FieldError("If-Match", 'expected "<version>"')]


@pytest.mark.parametrize(
    ("value", "version"),
    [('"3"', 3), ('W/"3"', 3), (' "7" ', 7), ('"0"', 0), ('"999999999"', 999999999)],
)
def test_if_match_version(value: str, version: int) -> None:
    assert if_match(value) == version


def test_etag_and_stale() -> None:
    assert etag(5) == '"5"'
    error = stale(4)
    assert isinstance(error, PreconditionFailed)
    assert error.status == 412
    assert error.detail == 'the resource changed (current ETag "4"); fetch it and retry'


async def test_if_match_through_the_app(client: Client) -> None:
    resp = await client.patch("/things/1")
    await problem(resp, 428, "PRECONDITION_REQUIRED")
    resp = await client.patch("/things/1", headers={"If-Match": "nope"})
    body = await problem(resp, 400, "VALIDATION_ERROR")
    assert fields(body) == [("If-Match", 'expected "<version>"')]
    resp = await client.patch("/things/1", headers={"If-Match": '"2"'})
    await problem(resp, 412, "PRECONDITION_FAILED")
    resp = await client.patch("/things/1", headers={"If-Match": 'W/"3"'})
    assert resp.status == 200
    assert resp.headers["ETag"] == '"4"'


# --- jsonio ---


@dataclasses.dataclass
class Row:
    id: uuid.UUID
    price: Decimal
    at: datetime
    tags: frozenset[str]


def test_json_decimal_is_a_string() -> None:
    assert dumps({"a": Decimal("68333.33"), "b": Decimal("100.00"), "c": Decimal("-0.5")}) == (
        b'{"a":"68333.33","b":"100.00","c":"-0.5"}'
    )


def test_json_decimal_never_uses_exponents() -> None:
    assert dumps([Decimal("1E-8"), Decimal("1E+20")]) == b'["0.00000001","100000000000000000000"]'


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1234.50", "1234.50"),
        ("-0.5", "-0.5"),
        ("0.00", "0.00"),
        ("1E-8", "0.00000001"),
        ("1E+3", "1000"),
        ("0E-16", "0.0000000000000000"),
        ("-2.5E-7", "-0.00000025"),
        ("35.1234567890123456", "35.1234567890123456"),
        ("NaN", "NaN"),
        ("-Infinity", "-Infinity"),
    ],
)
def test_decimal_text_is_format_f_in_every_form(value: str, text: str) -> None:
    """str() where it has no exponent, format(value, "f") where it has: the same text as
    format(value, "f") always gave."""
    assert decimal_text(Decimal(value)) == text == format(Decimal(value), "f")


def test_json_uuid_is_a_string() -> None:
    plain = uuid.UUID("12345678-1234-5678-1234-567812345678")
    from_pg = pgproto.UUID("12345678123456781234567812345678")  # what asyncpg returns
    assert type(from_pg) is not uuid.UUID
    assert dumps([plain, from_pg]) == (
        b'["12345678-1234-5678-1234-567812345678","12345678-1234-5678-1234-567812345678"]'
    )


def test_json_times_are_utc_z() -> None:
    aware = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    naive = datetime(2026, 11, 21, 12, 0, 0, 250000)  # aiomysql: naive UTC
    assert dumps([aware, naive, date(2026, 11, 21)]) == (
        b'["2026-11-21T12:00:00Z","2026-11-21T12:00:00.250000Z","2026-11-21"]'
    )


def test_json_non_utc_times_keep_their_offset_by_contract() -> None:
    """jsonio leaves datetimes to orjson (10x faster than a Python default); every time
    the services emit comes from the database as UTC, so this is the documented edge."""
    plus_two = datetime(2026, 11, 21, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert dumps(plus_two) == b'"2026-11-21T14:00:00+02:00"'


def test_json_dataclass_model_and_set() -> None:
    row = Row(
        uuid.UUID(int=1), Decimal("9.99"), datetime(2026, 1, 2, tzinfo=UTC), frozenset({"b", "a"})
    )
    assert orjson.loads(dumps(row)) == {
        "id": "00000000-0000-0000-0000-000000000001",
        "price": "9.99",
        "at": "2026-01-02T00:00:00Z",
        "tags": ["a", "b"],
    }
    assert dumps(ThingIn(name="n", qty=1)) == b'{"name":"n","qty":1,"address":null}'
    assert dumps({"s": {3, 1, 2}}) == b'{"s":[1,2,3]}'


def test_json_unknown_type_is_an_error() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps({"x": object()})


def test_json_response_and_envelope() -> None:
    resp = data({"n": Decimal("1.5")}, status=201, headers={"ETag": '"1"'})
    assert resp.status == 201
    assert resp.content_type == "application/json"
    assert resp.headers["ETag"] == '"1"'
    assert resp.body == b'{"data":{"n":"1.5"}}'
    other = json_response([], content_type="application/problem+json")
    assert other.content_type == "application/problem+json"


# --- error middleware, request id, security headers ---


async def test_unhandled_error_is_generic_500(client: Client) -> None:
    resp = await client.get("/boom", headers={"X-Request-ID": "trace-500"})
    body = await problem(resp, 500, "INTERNAL_ERROR")
    assert body == {
        "type": "https://fixup.dev/problems/internal-error",
        "title": "Internal error",
        "status": 500,
        "detail": "An unexpected error occurred.",
        "code": "INTERNAL_ERROR",
        "request_id": "trace-500",
    }
    text = (await resp.read()).decode()
    for secret in ("hunter2", "password", "postgresql", "RuntimeError", "Traceback"):
        assert secret not in text


@pytest.mark.parametrize(
    "rid", ["abc-123", "a.b:c_d-E", "x" * 128, "0f8fad5b-d9cb-469f-a165-70867728950e"]
)
async def test_valid_request_id_is_echoed(client: Client, rid: str) -> None:
    resp = await client.get("/health", headers={"X-Request-ID": rid})
    assert resp.status == 200
    assert resp.headers["X-Request-ID"] == rid


@pytest.mark.parametrize(
    "rid", ["has space", "x" * 129, "y" * 200, "semi;colon", "slash/x", "é", "<script>", ""]
)
async def test_invalid_request_id_is_replaced(client: Client, rid: str) -> None:
    resp = await client.get("/boom", headers={"X-Request-ID": rid})
    body = await problem(resp, 500, "INTERNAL_ERROR")
    new = resp.headers["X-Request-ID"]
    assert new != rid
    assert uuid.UUID(new).version == 4
    assert body["request_id"] == new


async def test_missing_request_id_is_generated(client: Client) -> None:
    first = await client.get("/health")
    second = await client.get("/health")
    ids = {first.headers["X-Request-ID"], second.headers["X-Request-ID"]}
    assert len(ids) == 2
    assert all(uuid.UUID(i).version == 4 for i in ids)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/boom", 500),
        ("GET", "/nowhere", 404),
        ("POST", "/things", 415),
        ("DELETE", "/things", 405),
    ],
)
async def test_security_headers_on_every_response(
    client: Client, method: str, path: str, status: int
) -> None:
    resp = await client.request(method, path)
    assert resp.status == status
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "Cache-Control" not in resp.headers  # anonymous: no no-store needed
    assert "Access-Control-Allow-Origin" not in resp.headers  # no Origin sent


async def test_routing_errors_are_problems(client: Client) -> None:
    resp = await client.get("/nowhere")
    await problem(resp, 404, "NOT_FOUND")
    resp = await client.delete("/things")
    await problem(resp, 405, "METHOD_NOT_ALLOWED")
    assert set(resp.headers["Allow"].split(",")) >= {"GET", "POST"}


@pytest.mark.parametrize(
    ("search", "pattern"),
    [
        (None, None),
        ("tap", "tap"),
        ("%", "\\%"),
        ("a_b", "a\\_b"),
        ("50%_off\\", "50\\%\\_off\\\\"),
        ("\\%", "\\\\\\%"),  # the backslash first: its escape is not escaped again
    ],
)
def test_like_pattern_takes_the_search_literally(search: str | None, pattern: str | None) -> None:
    assert like_pattern(search) == pattern


def test_text_sql_cannot_store_is_refused_naming_the_parameter() -> None:
    with pytest.raises(ValidationFailed) as info:
        listing("name=a%00b&limit=5")
    assert info.value.detail == "invalid query parameters"
    assert info.value.errors == [FieldError("name", UNSTORABLE_MESSAGE)]
