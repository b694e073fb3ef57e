"""Swagger UI at NGINX's /docs/ in headless Debian chromium, driven by playwright-core.

The page lists every service of docs/openapi/, shows the departments operations, and
"Try it out" + "Execute" on GET /v1/departments goes through NGINX and gets a 200; "Try it
out" on POST /v1/departments starts from the document's request example. A screenshot is
kept in test-artifacts/swagger-ui.png.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.e2e.browser import ARTIFACTS, artifact, assert_png, chromium, node, run_script
from tests.e2e.gateway_stack import Stack, running_stack
from tools import swag_config
from tools.local.service_process import ROOT


@pytest.fixture(scope="module")
async def stack(
    migrated_db: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    node()
    chromium()
    tmp = tmp_path_factory.mktemp("swagger")
    try:
        swag_config.assemble(tmp / "docs")
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
    async with running_stack(tmp, migrated_db("departments"), tmp / "docs") as running:
        yield running


async def drive(base: str) -> dict[str, Any]:
    return await run_script("swagger_ui.cjs", base, str(artifact("swagger-ui.png")), chromium())


def test_docs_list_comes_from_docs_openapi() -> None:
    assert swag_config.services() == sorted(
        p.stem for p in (ROOT / "docs" / "openapi").glob("*.json")
    )
    config = swag_config.swagger_config(["departments", "users"])
    assert config["urls"] == [  # relative to the page: /docs/ here, / in Compose
        {"name": "departments", "url": "openapi/departments.json"},
        {"name": "users", "url": "openapi/users.json"},
    ]
    assert config["validatorUrl"] is None


async def test_swagger_ui_lists_services_and_tries_the_list(stack: Stack) -> None:
    result = await drive(stack.gateway.url)
    assert result["services"] == swag_config.services()
    assert "departments" in result["services"]
    operations = set(result["operations"])
    assert {"GET /v1/departments", "POST /v1/departments", "GET /v1/departments/{id}"} <= operations
    assert {"PATCH /v1/departments/{id}", "DELETE /v1/departments/{id}"} <= operations
    assert result["status"] == "200"
    # "try it out" went through NGINX (servers: /api/departments), not to the service
    assert result["request_url"].startswith(f"{stack.gateway.url}/api/departments/v1/departments")
    assert not result["errors"], result["errors"]
    assert all(url.startswith(stack.gateway.url) for url in result["requests"]), result["requests"]
    assert_png(ARTIFACTS / "swagger-ui.png", 20_000)
    # "Try it out" on POST /v1/departments starts from its example (docs/examples.md)
    document = json.loads((ROOT / "docs" / "openapi" / "departments.json").read_text())
    body = document["paths"]["/v1/departments"]["post"]["requestBody"]["content"]
    examples = body["application/json"]["examples"]
    assert json.loads(result["create_body"]) == next(iter(examples.values()))["value"]
    # and the Execute request is in NGINX's access log, answered by departments
    lines = [json.loads(line) for line in stack.gateway.access_log.read_text().splitlines()]
    assert any(
        line["path"] == "/api/departments/v1/departments"
        and line["status"] == 200
        and line["service"] == "departments"
        for line in lines
    )
