"""What lib/http takes from a client, through the real middleware chain: JSON types taken
strictly (a boolean is never a number, a numeric string never an integer), decimal strings
still accepted where the API says so, and NUL or a lone surrogate anywhere in a body or a
query string a 400 naming the field (neither database can store them)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from lib.config import ServiceSettings
from lib.http.app import create_app
from lib.http.body import parse_body
from lib.http.fields import UNSTORABLE_MESSAGE, json_number, storable, unstorable_fields
from lib.http.jsonio import data
from lib.http.listing import ListQuery, parse_query
from lib.http.patch import Keep, PatchModel


class Place(BaseModel):
    model_config = ConfigDict(extra="forbid")
    city: str


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    qty: int = 1
    ratio: float = 0.0
    price: Decimal = Decimal(0)  # a decimal string; a JSON number is accepted too
    rating: Annotated[Decimal, BeforeValidator(json_number)] = Decimal(1)
    active: bool = False
    owner: uuid.UUID | None = None
    at: AwareDatetime | None = None
    place: Place | None = None
    tags: list[str] = Field(default_factory=list)


class ThingPatch(PatchModel):
    name: str | Keep = None
    price: Decimal | Keep = None
    owner: uuid.UUID | None = None
    qty: int | None = None


class ThingQuery(ListQuery):
    name: str | None = None
    active: bool | None = None


routes = web.RouteTableDef()


@routes.post("/things")
async def create(request: web.Request) -> web.Response:
    return data((await parse_body(request, Thing)).model_dump(mode="json"), status=201)


@routes.patch("/things")
async def patch(request: web.Request) -> web.Response:
    body = await parse_body(request, ThingPatch)
    return data({**body.model_dump(mode="json"), "set": sorted(body.model_fields_set)})


@routes.get("/things")
async def listing(request: web.Request) -> web.Response:
    return data(parse_query(request, ThingQuery).model_dump(mode="json"))


Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(aiohttp_client: Callable[[web.Application], Awaitable[Client]]) -> Client:
    settings = ServiceSettings(
        service="t", database_url="", rate_limit_ip_burst=100_000, rate_limit_ip_rate=10_000.0
    )
    return await aiohttp_client(create_app(settings, routes=routes, title="t"))


async def refused(client: Client, method: str, url: str, raw: bytes | None = None) -> list[str]:
    """The request answers 400 VALIDATION_ERROR problem+json; returns the fields named."""
    headers = {"Content-Type": "application/json"}
    resp = await client.request(method, url, data=raw, headers=headers)
    text = await resp.text()
    assert resp.status == 400, text
    assert resp.content_type == "application/problem+json"
    body = orjson.loads(text)
    assert body["code"] == "VALIDATION_ERROR", body
    return [e["field"] for e in body["errors"]]


async def accepted(client: Client, method: str, raw: bytes) -> dict[str, Any]:
    resp = await client.request(
        method, "/things", data=raw, headers={"Content-Type": "application/json"}
    )
    assert resp.status in {200, 201}, await resp.text()
    answer: dict[str, Any] = (await resp.json())["data"]
    return answer


# --- JSON types, strictly ---

NOT_A_NUMBER = [b"true", b"false", b'"3"', b'"0"', b'"3.5"', b"null"]


@pytest.mark.parametrize("field", ["qty", "ratio", "rating"])
@pytest.mark.parametrize("value", NOT_A_NUMBER)
async def test_a_boolean_or_a_string_is_never_a_number(
    client: Client, field: str, value: bytes
) -> None:
    raw = b'{"' + field.encode() + b'": ' + value + b"}"
    assert await refused(client, "POST", "/things", raw) == [field]


@pytest.mark.parametrize("value", [b"1", b"0", b'"true"', b'"yes"', b"null"])
async def test_a_boolean_is_only_true_or_false(client: Client, value: bytes) -> None:
    assert await refused(client, "POST", "/things", b'{"active": ' + value + b"}") == ["active"]


@pytest.mark.parametrize("value", [b"true", b"false", b'"abc"', b"[]"])
async def test_a_decimal_string_field_refuses_booleans_and_non_numbers(
    client: Client, value: bytes
) -> None:
    assert await refused(client, "POST", "/things", b'{"price": ' + value + b"}") == ["price"]


async def test_the_values_json_has_no_type_for_still_come_from_strings(client: Client) -> None:
    owner = uuid.uuid4()
    raw = orjson.dumps(
        {
            "qty": 3,
            "ratio": 2,
            "price": "12.50",
            "rating": 4.5,
            "active": True,
            "owner": str(owner),
            "at": "2026-11-21T12:00:00Z",
            "place": {"city": "Zoë 😀"},
        }
    )
    got = await accepted(client, "POST", raw)
    assert (got["qty"], got["ratio"], got["price"], got["rating"]) == (3, 2.0, "12.50", "4.5")
    assert (got["active"], got["owner"], got["at"]) == (True, str(owner), "2026-11-21T12:00:00Z")
    assert got["place"] == {"city": "Zoë 😀"}
    assert (await accepted(client, "POST", b'{"price": 12.5}'))["price"] == "12.5"


async def test_a_patch_takes_ids_and_decimals_from_strings_and_refuses_null_where_kept(
    client: Client,
) -> None:
    owner = str(uuid.uuid4())
    raw = orjson.dumps({"price": "9.99", "owner": owner, "qty": None})
    got = await accepted(client, "PATCH", raw)
    assert (got["price"], got["owner"], got["qty"]) == ("9.99", owner, None)
    assert got["set"] == ["owner", "price", "qty"]
    assert await refused(client, "PATCH", "/things", b'{"name": null}') == ["name"]
    assert await refused(client, "PATCH", "/things", b'{"qty": true}') == ["qty"]
    assert await refused(client, "PATCH", "/things", b'{"qty": "7"}') == ["qty"]


# --- what the databases cannot store ---


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b'{"name": "a\\u0000b"}', ["name"]),
        (b'{"name": "\\ud800"}', ["name"]),  # a lone high surrogate
        (b'{"name": "x\\udc00"}', ["name"]),  # a lone low surrogate
        (b'{"name": "\\ud92c\\ude2d\\u0000@$"}', ["name"]),  # issue 27's: a pair, then NUL
        (b'{"place": {"city": "\\u0000"}}', ["place.city"]),
        (b'{"tags": ["ok", "\\ud83d"]}', ["tags.1"]),
        (b'{"na\\u0000me": "x"}', ["na\\x00me"]),  # an unknown name, escaped in the answer
        (b'{"\\udfff": 1}', ["\\udfff"]),
    ],
)
async def test_nul_or_a_lone_surrogate_in_a_body_is_400_naming_the_field(
    client: Client, raw: bytes, named: list[str]
) -> None:
    for method in ("POST", "PATCH"):
        assert await refused(client, method, "/things", raw) == named


async def test_a_surrogate_pair_is_a_character_like_any_other(client: Client) -> None:
    got = await accepted(client, "POST", b'{"name": "\\ud83d\\ude00 ok"}')
    assert got["name"] == "😀 ok"


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("name=a%00b", ["name"]),
        ("limit=%00", ["limit"]),
        ("active=true&name=%00", ["name"]),
        ("na%00me=x", ["na\\x00me"]),
    ],
)
async def test_nul_in_a_query_string_is_400_naming_the_parameter(
    client: Client, query: str, named: list[str]
) -> None:
    assert await refused(client, "GET", f"/things?{query}") == named


def test_the_walk_names_every_unstorable_string_and_survives_deep_nesting() -> None:
    deep: Any = "\x00"
    for _ in range(5000):
        deep = [deep]
    errors = unstorable_fields({"a": deep, "b": "ok", "c": {"\ud800": "x\x00"}})
    named = sorted((e.field, e.message) for e in errors)
    assert named == [
        ("a" + ".0" * 5000, UNSTORABLE_MESSAGE),
        ("c.\\ud800", UNSTORABLE_MESSAGE),
        ("c.\\ud800", f"the name {UNSTORABLE_MESSAGE}"),
    ]
    assert storable("tab\there, é, 😀, \uffff")
    assert not storable("\udbff")
