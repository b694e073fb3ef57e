"""Swagger UI at NGINX's /docs/ in headless Debian chromium, driven by playwright-core.

The page lists every service of docs/openapi/, shows the departments operations, and
"Try it out" + "Execute" on GET /v1/departments goes through NGINX and gets a 200. A
screenshot is kept in test-artifacts/swagger-ui.png.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.gateway_stack import Stack, running_stack
from tools import swag_config
from tools.service_process import ROOT

SWAGGER = ROOT / "tools" / "swagger"
SCRIPT = Path(__file__).with_name("swagger_ui.cjs")
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT = ARTIFACTS / "swagger-ui.png"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "chromium is not installed; the Swagger UI test drives Debian's browser: "
            "apt-get install -y chromium (`make test` does it when run as root)",
            pytrace=False,
        )
    return found


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is not installed: apt-get install -y nodejs npm", pytrace=False)
    if not (SWAGGER / "node_modules" / "playwright-core").is_dir():
        pytest.fail(
            "playwright-core / swagger-ui-dist are not installed: make swagger-deps "
            "(npm ci in tools/swagger; `make test` runs it)",
            pytrace=False,
        )
    return found


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
    ARTIFACTS.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    proc = await asyncio.create_subprocess_exec(
        node(),
        str(SCRIPT),
        base,
        str(SCREENSHOT),
        chromium(),
        cwd=ROOT,
        env={**os.environ, "NODE_PATH": str(SWAGGER / "node_modules")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def test_docs_list_comes_from_docs_openapi() -> None:
    assert swag_config.services() == sorted(
        p.stem for p in (ROOT / "docs" / "openapi").glob("*.json")
    )
    config = swag_config.swagger_config(["departments", "users"])
    assert config["urls"] == [
        {"name": "departments", "url": "/docs/openapi/departments.json"},
        {"name": "users", "url": "/docs/openapi/users.json"},
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
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert SCREENSHOT.stat().st_size > 20_000
    # and the Execute request is in NGINX's access log, answered by departments
    lines = [json.loads(line) for line in stack.gateway.access_log.read_text().splitlines()]
    assert any(
        line["path"] == "/api/departments/v1/departments"
        and line["status"] == 200
        and line["service"] == "departments"
        for line in lines
    )
