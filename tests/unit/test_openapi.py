"""lib.http.openapi: @operation + build_spec give a valid OpenAPI 3.1 document."""

from __future__ import annotations

import copy
import enum
import json
import re
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from openapi_spec_validator import validate
from pydantic import BaseModel, ConfigDict, Field

from lib.errors import ValidationFailed
from lib.http.etag import if_match_version
from lib.http.jsonio import json_response
from lib.http.listing import ListQuery
from lib.http.openapi import CONTACT, build_spec, operation
from lib.http.openapi_bodies import PROBLEM_SCHEMA
from lib.http.openapi_io import Form, Header

# what `make test svc=` selects it for (tests/selection.py):
# lib/http only: orders and points are the example app's routes
EXERCISES = ()


class Address(BaseModel):
    city: str
    zip: str | None = None


class ThingOut(BaseModel):
    id: uuid.UUID
    name: str
    price: Decimal
    address: Address | None
    version: int
    created_at: datetime


class ThingPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=50)
    price: Decimal | None = None


class ThingQuery(ListQuery):
    status: Literal["open", "closed"] | None = Field(None, description="Only this status.")


@operation("List things", tags=["things"], response=ThingOut, paged=True, query=ThingQuery)
async def list_things(request: web.Request) -> web.Response:
    return json_response({"data": [], "meta": {"total": 0, "limit": 100, "page": 1}})


@operation(
    "Update a thing",
    tags=["things"],
    response=ThingOut,
    body=ThingPatch,
    if_match=True,
    etag=True,
    roles=("ADMIN", "MODERATOR"),
    errors=(404,),
    description="Partial update.",
)
async def patch_thing(request: web.Request) -> web.Response:
    return json_response({})


async def undocumented(request: web.Request) -> web.Response:
    return json_response({})


def make_spec(**extra_routes: Any) -> dict[str, Any]:
    app = web.Application()
    app.router.add_get("/v1/things", list_things)
    app.router.add_patch("/v1/things/{id}", patch_thing)
    app.router.add_get("/v1/internal", undocumented)
    for path, handler in extra_routes.items():
        app.router.add_get(path, handler)
    return build_spec(app, service="things", title="Things API", version="2.1.0")


@pytest.fixture(scope="module")
def built_spec() -> dict[str, Any]:
    return make_spec()


@pytest.fixture
def spec(built_spec: dict[str, Any]) -> dict[str, Any]:
    """A copy per test: a test that edits its spec changes no other test's."""
    return copy.deepcopy(built_spec)


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def test_spec_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["openapi"] == "3.1.0"
    assert spec["info"] == {
        "title": "Things API",
        "version": "2.1.0",
        "description": "The things service of Fixup.",
        "license": {"name": "MIT", "identifier": "MIT"},  # the repository's LICENSE
        "contact": CONTACT,  # SECURITY.md's address
    }
    assert spec["servers"] == [{"url": "/api/things"}]


def test_every_ref_resolves(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    found = refs(spec["paths"]) + refs(schemas)
    assert found
    for ref in found:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    assert {"Problem", "ThingOut", "ThingPatch", "Address"} <= schemas.keys()


def test_only_decorated_routes_without_head(spec: dict[str, Any]) -> None:
    assert sorted(spec["paths"]) == ["/v1/things", "/v1/things/{id}"]
    assert list(spec["paths"]["/v1/things"]) == ["get"]  # add_get's HEAD is left out
    assert list(spec["paths"]["/v1/things/{id}"]) == ["patch"]


def test_problem_component_and_security_schemes(spec: dict[str, Any]) -> None:
    components = spec["components"]
    assert components["schemas"]["Problem"] == PROBLEM_SCHEMA
    assert components["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "cookie": {"type": "apiKey", "in": "cookie", "name": "fixup_access"},
    }


def test_paged_list_operation(spec: dict[str, Any]) -> None:
    op = spec["paths"]["/v1/things"]["get"]
    assert op["operationId"] == "listThings"
    assert op["summary"] == "List things"
    assert op["tags"] == ["things"]
    assert op["security"] == []  # public: explicitly no credentials
    assert "requestBody" not in op
    params = {p["name"]: p for p in op["parameters"]}
    assert list(params) == ["limit", "page", "orderby", "sort", "status"]
    assert all(p["in"] == "query" and p["required"] is False for p in params.values())
    assert params["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "default": 100,
    }
    assert params["limit"]["description"] == "Page size, 1..1000."
    assert params["sort"]["schema"]["enum"] == ["asc", "desc"]
    assert params["status"]["description"] == "Only this status."
    assert sorted(op["responses"]) == ["200", "400", "429"]
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["required"] == ["data", "meta"]
    assert ok["properties"]["data"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/ThingOut"},
    }
    assert ok["properties"]["meta"]["required"] == ["total", "limit", "page"]
    assert "headers" not in op["responses"]["200"]


def test_authed_patch_operation(spec: dict[str, Any]) -> None:
    op = spec["paths"]["/v1/things/{id}"]["patch"]
    assert op["operationId"] == "updateAThing"
    assert op["security"] == [{"bearer": []}, {"cookie": []}]
    assert op["description"] == "Partial update.\n\nRoles: ADMIN, MODERATOR."
    path_param, header = op["parameters"]
    assert path_param == {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }
    pattern = header["schema"]["pattern"]
    assert header == {
        "name": "If-Match",
        "in": "header",
        "required": True,
        "description": "The ETag last seen (optimistic concurrency).",
        "schema": {"type": "string", "pattern": pattern},
    }
    # the documented pattern accepts exactly what lib.http.etag.if_match_version accepts
    for value in ('"3"', 'W/"3"', '"0"', '"999999999"', "3", '"abc"', "*", '"1234567890"'):
        documented = re.search(pattern, value) is not None
        request = make_mocked_request("PATCH", "/", headers={"If-Match": value})
        try:
            if_match_version(request)
            parsed = True
        except ValidationFailed:
            parsed = False
        assert documented is parsed, value
    assert op["requestBody"] == {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ThingPatch"}}},
    }
    assert sorted(op["responses"]) == [
        "200",
        "400",
        "401",
        "403",  # an authenticated write: a cookie without an allowed Origin
        "404",
        "412",
        "413",
        "415",
        "428",
        "429",
    ]
    ok = op["responses"]["200"]
    assert ok["headers"] == {"ETag": {"schema": {"type": "string"}}}
    assert ok["content"]["application/json"]["schema"] == {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"$ref": "#/components/schemas/ThingOut"}},
    }
    assert op["responses"]["428"]["description"] == "If-Match missing (PRECONDITION_REQUIRED)"
    assert op["responses"]["412"]["description"] == "Stale If-Match (PRECONDITION_FAILED)"
    for code in ("400", "401", "404", "412", "413", "415", "428", "429"):
        assert op["responses"][code]["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }


def test_schemas_use_api_formats(spec: dict[str, Any]) -> None:
    thing = spec["components"]["schemas"]["ThingOut"]
    assert thing["properties"]["id"] == {"format": "uuid", "title": "Id", "type": "string"}
    assert thing["properties"]["created_at"]["format"] == "date-time"
    assert set(thing["required"]) == {"id", "name", "price", "address", "version", "created_at"}
    patch = spec["components"]["schemas"]["ThingPatch"]
    assert patch["additionalProperties"] is False


@pytest.mark.parametrize(
    ("path", "schema"),
    [
        ("/v1/things/{thing_id}/parts/{part_id}", {"type": "string", "format": "uuid"}),
        ("/v1/tags/{slug}", {"type": "string"}),
    ],
)
def test_path_parameter_schemas(path: str, schema: dict[str, Any]) -> None:
    @operation("Get it", tags=["x"], response=ThingOut)
    async def get_it(request: web.Request) -> web.Response:
        return json_response({})

    built = make_spec(**{path: get_it})
    validate(built)
    params = built["paths"][path]["get"]["parameters"]
    assert [p["name"] for p in params] == [n.strip("{}") for n in path.split("/") if "{" in n]
    assert all(p["in"] == "path" and p["required"] and p["schema"] == schema for p in params)


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class ColourQuery(ListQuery):
    colour: Colour | None = None


def test_query_model_with_enum_resolves() -> None:
    @operation("List colours", tags=["x"], response=ThingOut, paged=True, query=ColourQuery)
    async def list_colours(request: web.Request) -> web.Response:
        return json_response({})

    built = make_spec(**{"/v1/colours": list_colours})
    schemas = built["components"]["schemas"]
    for ref in refs(built["paths"]):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    validate(built)


def test_dataclass_response_and_no_content() -> None:
    from dataclasses import dataclass

    @dataclass
    class Point:
        x: int
        y: int

    @operation("Get point", tags=["p"], response=Point, roles=())
    async def get_point(request: web.Request) -> web.Response:
        return json_response({})

    @operation("Delete point", tags=["p"], status=204)
    async def delete_point(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/v1/points/{id}", get_point)
    app.router.add_delete("/v1/points/{id}", delete_point)
    built = build_spec(app, service="p", title="P", version="1")
    validate(built)
    get = built["paths"]["/v1/points/{id}"]["get"]
    assert get["security"] == [{"bearer": []}, {"cookie": []}]  # any signed-in user
    assert get["description"] == "Roles: any signed-in caller."  # roles=(): every role
    assert built["components"]["schemas"]["Point"]["required"] == ["x", "y"]
    delete = built["paths"]["/v1/points/{id}"]["delete"]
    assert delete["responses"]["204"] == {"description": "Done, no content."}
    assert sorted(delete["responses"]) == ["204", "429"]
    assert delete["security"] == []


def test_a_create_links_to_the_operations_on_what_it_created() -> None:
    """POST P (201, data.id, ETag) -> every operation under P/{id} with no other path
    parameter; If-Match from the ETag. The committed orders document carries them."""
    document = json.loads(
        (Path(__file__).resolve().parents[2] / "docs/openapi/orders.json").read_text()
    )
    links = document["paths"]["/v1/orders"]["post"]["responses"]["201"]["links"]
    assert links["getAnOrder"] == {
        "operationId": "getAnOrder",
        "parameters": {"path.id": "$response.body#/data/id"},
    }
    assert links["updateAnOrder"]["parameters"] == {
        "path.id": "$response.body#/data/id",
        "header.If-Match": "$response.header.ETag",
    }
    # an operation with another path parameter ({offer_id}) cannot be filled: no link
    assert {"makeAnOffer", "listTheOffersOfAnOrder"} <= set(links)
    assert "acceptAnOffer" not in links
    validate(document)


def test_an_idempotent_create_documents_the_key_its_conflict_and_other_successes() -> None:
    class Made(BaseModel):
        id: uuid.UUID

    @operation("Make", tags=["m"], response=Made, status=201, also=(200,), idempotent=True)
    async def make(request: web.Request) -> web.Response:
        return json_response({})

    @operation("Make plainly", tags=["m"], response=Made, status=201)
    async def make_plainly(request: web.Request) -> web.Response:
        return json_response({})

    app = web.Application()
    app.router.add_post("/v1/made", make)
    app.router.add_post("/v1/plain", make_plainly)
    built = build_spec(app, service="m", title="M", version="1")
    validate(built)
    responses = built["paths"]["/v1/made"]["post"]["responses"]
    assert sorted(responses) == ["200", "201", "400", "409", "429"]
    assert responses["200"] == responses["201"]  # "the existing one": the same body
    assert "$ref" in responses["409"]["content"]["application/problem+json"]["schema"]
    key = built["paths"]["/v1/made"]["post"]["parameters"][0]
    assert (key["name"], key["in"], key["required"]) == ("Idempotency-Key", "header", False)
    # without the key and without `also`: neither the 409 nor the 200
    assert sorted(built["paths"]["/v1/plain"]["post"]["responses"]) == ["201", "429"]


def test_forms_headers_files_me_and_the_websocket_are_declared() -> None:
    form = Form("image", ("image/png",), 1024, "A PNG.")

    class Signed(BaseModel):
        sig: str
        page: int = 1

    @operation("Upload", tags=["f"], form=form, me=True, roles=("ADMIN",), status=204)
    async def upload(request: web.Request) -> web.Response:
        return web.Response(status=204)

    @operation("Fetch", tags=["f"], query=Signed, produces=("image/png",))
    async def fetch(request: web.Request) -> web.Response:
        return web.Response()

    @operation("Socket", tags=["w"], status=101, headers=(Header("Sec-WebSocket-Protocol", "p"),))
    async def socket(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app.router.add_put("/v1/files/{id}", upload)
    app.router.add_get("/v1/files/{key}/raw", fetch)
    app.router.add_get("/v1/ws", socket)
    built = build_spec(app, service="f", title="F", version="1")
    validate(built)
    put = built["paths"]["/v1/files/{id}"]["put"]
    multipart = put["requestBody"]["content"]["multipart/form-data"]
    assert multipart["schema"]["required"] == ["image"]
    assert multipart["encoding"] == {"image": {"contentType": "image/png"}}
    assert "1024 bytes" in multipart["schema"]["properties"]["image"]["description"]
    assert put["responses"]["415"]["description"].startswith("Body is not multipart/form-data")
    [path_id] = put["parameters"]
    assert re.fullmatch(path_id["schema"]["pattern"], "me")
    assert re.fullmatch(path_id["schema"]["pattern"], str(uuid.uuid4()))
    assert not re.fullmatch(path_id["schema"]["pattern"], "you")
    get = built["paths"]["/v1/files/{key}/raw"]["get"]
    assert get["security"] == []
    assert get["description"] == "Public: no credentials."
    assert {p["name"]: p["required"] for p in get["parameters"] if p["in"] == "query"} == {
        "sig": True,
        "page": False,
    }
    assert get["responses"]["200"]["content"] == {
        "image/png": {"schema": {"type": "string", "format": "binary"}}
    }
    ws = built["paths"]["/v1/ws"]["get"]
    assert ws["responses"]["101"]["description"].startswith("Switching Protocols")
    assert [p["name"] for p in ws["parameters"]] == ["Sec-WebSocket-Protocol"]
    assert built["tags"] == [
        {"name": "f", "description": "Fetch; Upload."},
        {"name": "w", "description": "Socket."},
    ]
