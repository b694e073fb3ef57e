"""Every operation of every document has examples lifted from docs/examples.md or the
service's own services/<service>/examples.md (a request example where it takes a JSON
body, at least one response example), each valid against the schema it illustrates; and
the lifting reads the pages as documented (tools/openapi_examples.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from lib.http.openapi_examples import EXAMPLES_DIR
from tools import openapi_examples, swag


@cache
def document(service: str) -> dict[str, Any]:
    return swag.spec_of(service)


def operations() -> Iterator[tuple[str, str, str]]:
    for service in swag.DOCUMENTED:
        for path, item in document(service)["paths"].items():
            for method in item:
                yield service, method, path


OPERATIONS = list(operations())


def errors(spec: dict[str, Any], schema: dict[str, Any], value: Any) -> list[str]:
    """What is wrong with `value` against `schema`, whose $refs point into `spec`."""
    rooted = schema | {"components": spec["components"]}  # "#/components/..." resolves
    validator = Draft202012Validator(rooted, format_checker=FormatChecker())
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(value)
    ]


def test_every_documented_service_is_covered() -> None:
    assert {service for service, _, _ in OPERATIONS} == set(swag.DOCUMENTED)
    assert len(OPERATIONS) >= len(swag.DOCUMENTED)


@pytest.mark.parametrize(("service", "method", "path"), OPERATIONS)
def test_every_operation_has_valid_examples(service: str, method: str, path: str) -> None:
    spec = document(service)
    op = spec["paths"][path][method]
    where = f"{service}: {method.upper()} {path}"
    body = op.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        assert body.get("examples"), (
            f"{where}: no request example (docs/examples.md or the service's page)"
        )
        for name, example in body["examples"].items():
            assert not errors(spec, body["schema"], example["value"]), (name, where)
    shown = 0
    for status, response in op["responses"].items():
        for media in response.get("content", {}).values():
            for name, example in media.get("examples", {}).items():
                problems = errors(spec, media["schema"], example["value"])
                assert not problems, f"{where} {status} {name}: {problems}"
                shown += 1
    assert shown, f"{where}: no response example (docs/examples.md or the service's page)"


def test_the_committed_examples_are_the_pages() -> None:
    lifted = openapi_examples.lift_pages(openapi_examples.pages(), openapi_examples.specs())
    for service, found in lifted.items():
        committed = (EXAMPLES_DIR / f"{service}.json").read_text()
        assert found, f"{service}: no executed page shows any of its operations"
        assert committed == swag.render(found), f"{service}: run make swag-gen"


SPEC: dict[str, Any] = {
    "paths": {
        "/v1/things": {
            "post": {"responses": {"201": {"content": {}}, "400": {"content": {}}}},
        },
        "/v1/things/{id}": {
            "get": {"responses": {"200": {"content": {}}, "404": {"content": {}}}},
            "delete": {"responses": {"204": {"description": "Done"}}},
        },
        "/v1/things/mine": {"get": {"responses": {"200": {"content": {}}}}},
    }
}
PAGE = """\
# Things

```sh
NAME='a thing'
EMAIL=me-$RUN@example.com
```

## Make one

A thing is made:

```sh
THING=$(curl -s "$API/shop/v1/things" "${USER[@]}" -H "$JSON" -d @- <<EOF
{"name": "$NAME", "owner": "$EMAIL", "parent": "$PARENT_ID"}
EOF
)
jq <<<"$THING"
```

```json
{
  "data": {"id": "<uuid>", "name": "a thing", "at": "<time>"}
}
```

```sh
curl -s "$API/shop/v1/things" -d '{"name": ""}' | jq
```

```json
{"type": "x", "title": "Bad", "status": 400, "request_id": "<request-id>"}
```

```sh
curl -s "$API/shop/v1/things/mine" | jq -r .data.name
curl -s -o /dev/null -w '%{http_code}\\n' -X DELETE "$API/shop/v1/things/$THING_ID"
```

```text
a thing
204
```

```sh
curl -s "$API/shop/v1/things/mine" | jq
```

```json
{"data": [{"id": "<uuid>"}, {"id": "<uuid>"}]}
```
"""


def test_the_lifting_reads_requests_answers_and_placeholders() -> None:
    lifted = openapi_examples.lift_pages({openapi_examples.SOURCE: PAGE}, {"shop": SPEC})["shop"]
    assert set(lifted) == {"POST /v1/things", "GET /v1/things/mine"}  # a filtered answer: none
    made = lifted["POST /v1/things"]
    request = made["request"]["make-one"]
    assert request["value"] == {
        "name": "a thing",
        "owner": f"me-{openapi_examples.VOLATILE['<n>']}@example.com",
        "parent": openapi_examples.example_uuid("parent_id"),
    }
    assert request["description"] == "A thing is made."
    answer = made["responses"]["201"]["make-one"]["value"]["data"]
    assert answer["id"] == openapi_examples.example_uuid("id")
    assert answer["at"] == openapi_examples.VOLATILE["<time>"]
    refused = made["responses"]["400"]["make-one"]
    assert refused["value"]["request_id"] == openapi_examples.VOLATILE["<request-id>"]
    assert "description" not in refused  # another block right above it
    mine = lifted["GET /v1/things/mine"]["responses"]["200"]["make-one"]["value"]["data"]
    assert mine[0]["id"] != mine[1]["id"]  # the items of a list differ


def test_a_status_the_document_does_not_declare_is_refused() -> None:
    page = PAGE.replace('"status": 400', '"status": 409')
    with pytest.raises(ValueError, match=r"docs/examples.md:\d+: the page shows 409"):
        openapi_examples.lift_pages({openapi_examples.SOURCE: page}, {"shop": SPEC})


def test_a_variable_without_a_value_is_refused() -> None:
    page = PAGE.replace('"parent": "$PARENT_ID"', '"parent": "$PARENT"')
    with pytest.raises(ValueError, match=r"docs/examples.md:\d+: no example value for \$PARENT"):
        openapi_examples.lift_pages({openapi_examples.SOURCE: page}, {"shop": SPEC})


def test_a_service_page_adds_what_the_first_does_not_show() -> None:
    """A service's own page is lifted after docs/examples.md, its examples named by it."""
    own = "services/shop/examples.md"
    first = PAGE[: PAGE.index('```sh\ncurl -s "$API/shop/v1/things/mine" | jq -r')]
    lifted = openapi_examples.lift_pages({"docs/examples.md": first, own: PAGE}, {"shop": SPEC})
    made = lifted["shop"]["POST /v1/things"]["responses"]["201"]["make-one"]
    assert made["summary"] == "Make one (docs/examples.md)"  # the first page's wins
    mine = lifted["shop"]["GET /v1/things/mine"]["responses"]["200"]["make-one"]
    assert mine["summary"] == f"Make one ({own})"
    bad = PAGE.replace('"$API/shop/v1/things" -d', '"$API/shop/v1/thingz" -d')
    with pytest.raises(ValueError, match=rf"{own}:\d+: POST /v1/thingz is no operation"):
        openapi_examples.lift_pages({own: bad}, {"shop": SPEC})


def test_the_served_document_carries_the_lifted_examples() -> None:
    lifted = json.loads((EXAMPLES_DIR / "orders.json").read_text())
    created = lifted["POST /v1/orders"]["responses"]["201"]
    served = document("orders")["paths"]["/v1/orders"]["post"]["responses"]["201"]
    assert served["content"]["application/json"]["examples"] == created


def test_an_example_that_does_not_fit_its_schema_is_seen() -> None:
    spec = document("orders")
    schema = spec["paths"]["/v1/orders"]["post"]["requestBody"]["content"]["application/json"]
    assert errors(spec, schema["schema"], {"service_id": "nope", "tip": 5})
