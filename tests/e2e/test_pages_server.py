"""The account pages as Kubernetes serves them, run here with the local nginx binary: the
prod overlay rendered by `kubectl kustomize`, the `pages` Deployment's ConfigMap volumes
written out item by item (the pages from nginx/pages, the config from pages-server.conf and
the gateway's snippets), and the container's own command run on them. Only what a pod has
and this machine has not is moved: the mount paths under a temporary root, `listen 8080`
to a free loopback port (and `user root;` when the test runs as root, where the pod runs
as uid 101). Both pages and their assets answer with the gateway's headers and CSP, an old
`?token=` link is served and its token never reaches the log, what the server does not
serve is problem+json.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.gateway_stack import answers, require_nginx, wait_until
from tests.e2e.test_account_pages import CSP
from tests.unit.test_k8s import PAGES, PAGES_PORT, kinds, render
from tools.deploy.nginx import PAGES_DIR
from tools.local.ports import free_port

SECRET = "s3cr3t-T0KEN-value"
HEADERS = {
    "content-security-policy": CSP,
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}
PROBLEM_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
                   "x-frame-options": "DENY"}  # fmt: skip


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    config_dir: Path

    def logs(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def access_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.read_text().splitlines() if line]


def spawn(command: list[str], stdout: Path | None, stderr: Path) -> subprocess.Popen[bytes]:
    out = subprocess.DEVNULL if stdout is None else stdout.open("w")
    return subprocess.Popen(command, stdout=out, stderr=stderr.open("w"))


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def pod_files(docs: dict[tuple[str, str], Any], root: Path, port: int) -> list[str]:
    """Write the `pages` pod's volumes under `root`; -> its container's command, here."""
    pod = docs[("Deployment", PAGES)]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    moved = re.compile(
        r"(?<![\w./-])(" + "|".join(sorted(map(re.escape, mounts.values()), key=len)[::-1]) + ")"
    )

    def here(text: str) -> str:  # a pod path -> the same path under root
        return moved.sub(lambda m: f"{root}{m.group(1)}", text)

    for volume in pod["volumes"]:
        target = root / mounts[volume["name"]].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        if "configMap" not in volume:
            assert "emptyDir" in volume, volume
            continue
        data = docs[("ConfigMap", volume["configMap"]["name"])]["data"]
        for item in volume["configMap"]["items"]:
            text = data[item["key"]]
            if volume["name"] == "config":  # the server's config: its paths and port
                text = here(text).replace(f"listen {PAGES_PORT};", f"listen 127.0.0.1:{port};")
            path = target / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    command = [here(arg) for arg in container["command"] + container["args"]]
    assert command[0] == "nginx"
    command[0] = require_nginx()
    if os.geteuid() == 0:  # as root nginx drops its workers to nobody; the pod is uid 101
        command[-1] += " user root;"
    return command


@pytest.fixture(scope="module")
def docs() -> dict[tuple[str, str], Any]:
    return kinds(render("prod"))


@pytest.fixture(scope="module")
async def pages(
    docs: dict[tuple[str, str], Any], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    tmp = tmp_path_factory.mktemp("pages_pod")
    port = free_port()
    command = pod_files(docs, tmp / "pod", port)
    stdout, stderr = tmp / "stdout.log", tmp / "stderr.log"
    proc = spawn(command, stdout, stderr)
    server = Server(f"http://127.0.0.1:{port}", proc, stdout, stderr, tmp / "pod")
    try:

        async def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"nginx exited: {server.logs()}")
            return await answers(f"{server.url}/healthz")

        await wait_until(up, "the pages server answers /healthz")
        yield server
    finally:
        stop(proc)


async def fetch(
    url: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, headers=headers or {}, allow_redirects=False) as resp,
    ):
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read()


@pytest.mark.parametrize(
    ("path", "source", "content_type"),
    [
        ("/verify-email", "verify-email.html", "text/html; charset=utf-8"),
        ("/reset-password", "reset-password.html", "text/html; charset=utf-8"),
        (f"/verify-email?token={SECRET}", "verify-email.html", "text/html; charset=utf-8"),
        (f"/reset-password?token={SECRET}&x=1", "reset-password.html", "text/html; charset=utf-8"),
        ("/account/account.css", "assets/account.css", "text/css"),
        ("/account/verify-email.js", "assets/verify-email.js", "application/javascript"),
        ("/account/reset-password.js", "assets/reset-password.js", "application/javascript"),
    ],
)
async def test_the_pages_and_assets_with_the_gateways_headers(
    pages: Server, path: str, source: str, content_type: str
) -> None:
    status, headers, body = await fetch(pages.url + path, headers={"X-Request-ID": "pages-1"})
    assert status == 200, (status, body[:200])
    assert body == (PAGES_DIR / source).read_bytes()  # the repository's file, unchanged
    assert headers["content-type"].startswith(content_type), headers["content-type"]
    for name, value in HEADERS.items():
        assert headers.get(name) == value, (name, headers)
    assert headers["x-request-id"] == "pages-1"
    assert "server" not in headers or headers["server"] == "nginx"  # server_tokens off


async def test_a_request_without_id_gets_one_and_the_log_has_no_token(pages: Server) -> None:
    status, headers, _ = await fetch(f"{pages.url}/verify-email?token={SECRET}")
    assert status == 200
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])

    async def logged() -> bool:
        ids = {line["request_id"] for line in pages.access_lines()}
        return headers["x-request-id"] in ids

    await wait_until(logged, "the request's access log line")
    (line,) = [x for x in pages.access_lines() if x["request_id"] == headers["x-request-id"]]
    assert line["path"] == "/verify-email"
    assert line["query"] == "token=[REDACTED]"
    assert line["service"] == "pages"
    assert line["status"] == 200
    assert SECRET not in pages.logs()
    assert all(x["path"] != "/healthz" for x in pages.access_lines())  # probes unlogged


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/", 404, "NOT_FOUND"),
        ("GET", "/api/users/v1/users", 404, "NOT_FOUND"),
        ("GET", "/account/missing.js", 404, "NOT_FOUND"),
        ("GET", f"/verify-email.html?token={SECRET}", 404, "NOT_FOUND"),
        ("POST", "/verify-email", 405, "METHOD_NOT_ALLOWED"),
    ],
)
async def test_what_it_does_not_serve_is_problem_json(
    pages: Server, method: str, path: str, status: int, code: str
) -> None:
    got, headers, body = await fetch(pages.url + path, method, {"X-Request-ID": "pages-2"})
    assert got == status, body
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert (problem["status"], problem["code"], problem["request_id"]) == (status, code, "pages-2")
    for name, value in PROBLEM_HEADERS.items():
        assert headers.get(name) == value, (name, headers)
    assert SECRET not in pages.logs()
