"""Headless Debian chromium driven by playwright-core scripts (tests/e2e/*.cjs).

Missing chromium, node or the npm packages FAILS the test with how to install them.
Screenshots go to test-artifacts/ (kept by CI as the run's artifacts).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tools.local.service_process import ROOT
from tools.time_scale import scaled

SWAGGER = ROOT / "tools" / "swagger"
ARTIFACTS = ROOT / "test-artifacts"
SCRIPTS = Path(__file__).parent
RUN_TIMEOUT = scaled(120.0)  # a script's own waits are 20 s each


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "chromium is not installed; the browser tests drive Debian's browser: "
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


def artifact(name: str) -> Path:
    """test-artifacts/<name>, any earlier one removed (a stale file must not pass)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.unlink(missing_ok=True)
    return path


async def run_script(script: str, *args: str) -> dict[str, Any]:
    """`node tests/e2e/<script> args...` -> the JSON object it printed last."""
    proc = await asyncio.create_subprocess_exec(
        node(),
        str(SCRIPTS / script),
        *args,
        cwd=ROOT,
        env={**os.environ, "NODE_PATH": str(SWAGGER / "node_modules")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT)
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def assert_png(path: Path, min_bytes: int = 5_000) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    assert len(data) > min_bytes, (path, len(data))
