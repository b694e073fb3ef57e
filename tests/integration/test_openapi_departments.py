"""The departments OpenAPI document: valid 3.1, served == generated == committed."""

from __future__ import annotations

import json
from typing import Any

from openapi_spec_validator import validate

from tools import swag


async def test_served_document_equals_the_generated_and_committed_one(client: Any) -> None:
    served = await (await client.get("/v1/openapi.json")).json()
    generated = swag.spec_of("departments")
    validate(generated)
    assert served == json.loads(swag.render(generated))
    committed = (swag.DOCS / "departments.json").read_text()
    assert committed == swag.render(generated), "run make swag-gen svc=departments"


def test_document_describes_the_contract() -> None:
    spec = swag.spec_of("departments")
    paths = spec["paths"]
    restore = "/v1/departments/{id}/restore"
    audit = "/v1/audit-events"
    assert set(paths) == {"/v1/departments", "/v1/departments/{id}", restore, audit}
    assert set(paths["/v1/departments"]) == {"get", "post"}
    assert set(paths["/v1/departments/{id}"]) == {"get", "patch", "delete"}
    assert set(paths[restore]) == {"post"}
    assert any(
        p["name"] == "If-Match" and p["required"] for p in paths[restore]["post"]["parameters"]
    )
    listing = paths["/v1/departments"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert names == {"limit", "page", "orderby", "sort", "state"}
    state = next(p for p in listing["parameters"] if p["name"] == "state")
    assert (state["schema"]["default"], state["schema"]["x-roles"]) == ("active", ["ADMIN"])
    assert {"401", "403"} <= set(listing["responses"])  # `state` is an ADMIN's
    patch = paths["/v1/departments/{id}"]["patch"]
    assert {"412", "428", "401", "403", "404", "409"} <= set(patch["responses"])
    assert any(p["name"] == "If-Match" and p["required"] for p in patch["parameters"])
    create = paths["/v1/departments"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert "security" in create
    assert create["security"] == [{"bearer": []}, {"cookie": []}]
    # public: no credentials needed, an ADMIN's optional for `state`
    assert listing["security"] == [{}, {"bearer": []}, {"cookie": []}]
    assert paths["/v1/departments/{id}"]["get"]["security"] == []  # public, nothing optional
    department = spec["components"]["schemas"]["Department"]
    assert set(department["required"]) >= {"id", "name", "address", "version"}


def test_unknown_service_is_a_clear_error() -> None:
    assert swag.main(["gen", "nosuch"]) == 2
