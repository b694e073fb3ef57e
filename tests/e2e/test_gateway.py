"""NGINX in front of the departments service, with the access-log exporter, all real processes.

Through NGINX == direct; the request-id rule at the edge and in both logs; the JSON access
log; the exporter's counters per route template, across log rotation, with malformed
lines; stub_status; headers and WebSocket. NGINX's own errors (no route, a body too large,
a down upstream): test_gateway_errors.py.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.e2e.gateway_stack import (
    Stack,
    delta,
    requests_by_path,
    running_stack,
    value,
    wait_until,
)

DEPARTMENTS = "/api/departments"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
ACCESS_FIELDS = {
    "time",
    "request_id",
    "remote_addr",
    "method",
    "path",
    "query",
    "status",
    "body_bytes_sent",
    "request_time",
    "upstream_response_time",
    "upstream_status",
    "upstream_addr",
    "service",
}


@pytest.fixture(scope="module")
async def stack(
    migrated_db: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("gateway")
    docs = tmp / "docs"
    docs.mkdir()
    async with running_stack(tmp, migrated_db("departments"), docs) as running:
        yield running


async def fetch(
    method: str, url: str, headers: dict[str, str] | None = None, data: bytes | None = None
) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, headers=headers or {}, data=data) as resp,
    ):
        raw = await resp.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        return resp.status, dict(resp.headers), body


def access_lines(stack: Stack) -> list[dict[str, Any]]:
    """NGINX's lines, without the malformed ones test_malformed_lines_... appends."""
    text = stack.gateway.access_log.read_text() if stack.gateway.access_log.exists() else ""
    lines = []
    for raw in text.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and "request_id" in line:
            lines.append(line)
    return lines


async def logged(stack: Stack, request_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The NGINX access-log line and the service's request log line of one request id."""
    found: dict[str, dict[str, Any]] = {}

    async def both() -> bool:
        for line in access_lines(stack):
            if line["request_id"] == request_id:
                found["nginx"] = line
        for raw in stack.service.log.read_text().splitlines():
            if request_id in raw and '"event":"request"' in raw:
                found["service"] = json.loads(raw)
        return len(found) == 2

    await wait_until(both, f"request {request_id} in both logs")
    return found["nginx"], found["service"]


def test_rendered_config_passes_nginx_t(stack: Stack) -> None:
    result = stack.gateway.tool("test")
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout
    rendered = (stack.gateway.runtime / "conf" / "nginx.conf").read_text()
    assert "${" not in rendered


@pytest.mark.parametrize(
    "path",
    [
        "/v1/departments",
        "/v1/departments?orderby=address&sort=desc&limit=2",
        "/v1/departments/{id}",
        "/v1/departments/7b0c8f52-3e1d-4a6b-9c2f-5d8e1a4b7c30",  # 404 (fixed: xdist collects alike)
        "/v1/departments/not-a-uuid",  # 400 or 404: whatever the service says
        "/v1/departments?limit=0",  # 400
        "/v1/departments?nope=1",  # 400
        "/v1/openapi.json",
        "/health",
    ],
)
async def test_through_nginx_equals_direct(stack: Stack, path: str) -> None:
    path = path.replace("{id}", stack.department_ids[0])
    rid = f"same.{uuid.uuid4().hex}"  # the same id both ways: problem bodies carry it
    direct = await fetch("GET", stack.service.url + path, {"X-Request-ID": rid})
    proxied = await fetch("GET", stack.gateway.url + DEPARTMENTS + path, {"X-Request-ID": rid})
    assert proxied[0] == direct[0]
    assert proxied[2] == direct[2]
    for header in ("Content-Type", "ETag", "X-Request-ID"):
        assert proxied[1].get(header) == direct[1].get(header), header
    assert proxied[1]["X-Request-ID"] == rid


async def test_valid_request_id_is_kept_end_to_end(stack: Stack) -> None:
    rid = f"client:{uuid.uuid4().hex}.A-1"
    status, headers, _ = await fetch(
        "GET", f"{stack.gateway.url}{DEPARTMENTS}/v1/departments", {"X-Request-ID": rid}
    )
    assert status == 200
    assert headers["X-Request-ID"] == rid
    assert list(headers).count("X-Request-ID") == 1
    edge, service = await logged(stack, rid)
    assert edge["status"] == 200
    assert edge["service"] == "departments"
    assert service["request_id"] == rid
    assert service["route"] == "/v1/departments"


@pytest.mark.parametrize(
    "incoming",
    ["has space", "x" * 129, "semi;colon", "ünïcode", ""],
    ids=["space", "too-long", "semicolon", "non-ascii", "empty"],
)
async def test_invalid_request_id_is_replaced_and_shared(stack: Stack, incoming: str) -> None:
    headers = {"X-Request-ID": incoming} if incoming else {}
    if incoming == "ünïcode":
        headers = {"X-Request-ID": incoming.encode().decode("latin-1")}
    status, response_headers, _ = await fetch(
        "GET", f"{stack.gateway.url}{DEPARTMENTS}/v1/departments?limit=1", headers
    )
    assert status == 200
    rid = response_headers["X-Request-ID"]
    assert rid != incoming
    assert HEX32.match(rid), rid
    edge, service = await logged(stack, rid)  # NGINX's new id is the one the service used
    assert edge["request_id"] == service["request_id"] == rid


async def test_nginx_overrides_client_ip_headers(stack: Stack) -> None:
    """X-Real-IP is NGINX's peer: a client cannot spoof the rate limiter's key through it."""
    rid = f"ip.{uuid.uuid4().hex}"
    spoof = {"X-Request-ID": rid, "X-Real-IP": "203.0.113.9"}
    await fetch("GET", f"{stack.gateway.url}{DEPARTMENTS}/v1/departments?limit=1", spoof)
    _, service = await logged(stack, rid)
    assert service["client_ip"] == "127.0.0.1"


async def test_headers_and_prefix_reach_the_upstream(stack: Stack) -> None:
    status, _, body = await fetch(
        "GET",
        f"{stack.gateway.url}/api/catalog/v1/services/42?a=1&b=x%20y",
        {"X-Request-ID": "hdr.1", "X-Forwarded-For": "198.51.100.7"},
    )
    assert status == 200
    assert body["path"] == "/v1/services/42"  # /api/catalog stripped
    assert body["query"] == "a=1&b=x%20y"
    sent = body["headers"]
    assert sent["x-request-id"] == "hdr.1"
    assert sent["x-real-ip"] == "127.0.0.1"
    assert sent["x-forwarded-for"] == "198.51.100.7, 127.0.0.1"
    assert sent["x-forwarded-proto"] == "http"
    assert sent.get("connection", "") == ""  # keepalive to the upstream, no "close"
    assert "upgrade" not in sent


async def test_no_secret_query_value_reaches_any_log(stack: Stack) -> None:
    """Redacted in NGINX's access log and the service's; NGINX's error log (an upstream
    down writes the request line there) holds nothing of the request either."""
    marks = [f"s{i}{uuid.uuid4().hex[:12]}" for i in range(7)]
    ok_query = f"limit=1&token={marks[0]}&Access_Token={marks[1]}&%74oken={marks[2]}"
    down_query = f"code={marks[3]}&sig={marks[4]}&expires=9"
    many = "&".join(f"password={m}" for m in marks[5:]) + "&refresh_token=r&token=t&code=c"
    rids = {f"redact.{uuid.uuid4().hex}": q for q in (ok_query, down_query, many)}
    targets = [f"{DEPARTMENTS}/v1/departments", "/api/users/v1/users", f"{DEPARTMENTS}/x"]
    for (rid, query), path in zip(rids.items(), targets, strict=True):
        # yarl would normalise %74oken: the URL is sent as written
        url = URL(f"{stack.gateway.url}{path}?{query}", encoded=True)
        async with aiohttp.ClientSession() as http, http.get(url, headers={"X-Request-ID": rid}):
            pass
    edge, service = await logged(stack, next(iter(rids)))
    assert edge["query"] == "limit=1&token=[REDACTED]&Access_Token=[REDACTED]&%74oken=[REDACTED]"
    assert service["query"] == edge["query"]

    async def all_logged() -> bool:
        return {line["request_id"] for line in access_lines(stack)} >= set(rids)

    await wait_until(all_logged, "the three requests in the access log")
    lines = {line["request_id"]: line for line in access_lines(stack)}
    rid_down, rid_many = list(rids)[1:]
    assert lines[rid_down]["status"] == 503  # users is down: nginx's error path ran
    assert lines[rid_down]["query"] == "code=[REDACTED]&sig=[REDACTED]&expires=9"
    assert lines[rid_many]["query"] == "[REDACTED: too many secret parameters]"
    logs = [stack.gateway.access_log, stack.gateway.error_log, stack.gateway.output]
    logs.append(stack.service.log)
    texts = {str(p): p.read_text() for p in logs if p.exists()}
    assert [(p, m) for p, t in texts.items() for m in marks if m in t] == []


async def test_chat_websocket_upgrades_through_nginx(stack: Stack) -> None:
    url = f"{stack.gateway.url.replace('http', 'ws')}/api/chat/v1/conversations/{uuid.uuid4()}/ws"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        for text in ("one", "two"):
            await ws.send_str(text)
            reply = await ws.receive(timeout=5)
            assert reply.data == f"echo:{text}"

    async def logged_101() -> bool:
        return any(
            line["status"] == 101 and line["path"] == url.split(str(stack.gateway.port), 1)[1]
            for line in access_lines(stack)
        )

    await wait_until(logged_101, "the WebSocket (101) in the access log")


async def _true(value: bool) -> bool:
    return value


async def test_chat_replica_down_is_skipped(stack: Stack) -> None:
    """chat's second replica refuses connections: every request still lands on the first."""
    for _ in range(6):
        status, _, body = await fetch("GET", f"{stack.gateway.url}/api/chat/v1/conversations")
        assert status == 200
        assert body["path"] == "/v1/conversations"


async def test_access_log_has_every_field(stack: Stack) -> None:
    rid = f"fields.{uuid.uuid4().hex}"
    await fetch(
        "GET", f"{stack.gateway.url}{DEPARTMENTS}/v1/departments?limit=1", {"X-Request-ID": rid}
    )
    edge, _ = await logged(stack, rid)
    assert set(edge) >= ACCESS_FIELDS
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$", edge["time"])
    assert edge["remote_addr"] == "127.0.0.1"
    assert edge["method"] == "GET"
    assert (edge["path"], edge["query"]) == (f"{DEPARTMENTS}/v1/departments", "limit=1")
    assert edge["upstream_status"] == "200"
    assert edge["status"] == 200
    assert isinstance(edge["body_bytes_sent"], int)
    assert edge["body_bytes_sent"] > 0
    assert isinstance(edge["request_time"], float)
    assert float(edge["upstream_response_time"]) >= 0.0
    assert edge["upstream_addr"] == f"127.0.0.1:{stack.service.port}"
    assert edge["service"] == "departments"


async def test_access_log_escapes_json(stack: Stack) -> None:
    agent = 'quote" back\\slash {"json": 1}'
    await fetch(
        "GET", f"{stack.gateway.url}/api/nope?q=%22", {"User-Agent": agent, "X-Request-ID": "esc.1"}
    )

    async def present() -> bool:
        return any(line["request_id"] == "esc.1" for line in access_lines(stack))

    await wait_until(present, "the escaped line")  # json.loads of every line succeeded
    line = next(line for line in access_lines(stack) if line["request_id"] == "esc.1")
    assert line["http_user_agent"] == agent


Counts = dict[tuple[str, str, str], float]


async def _counts_after(stack: Stack, before: Counts, total: int) -> Counts:
    found: dict[str, Counts] = {}

    async def caught_up() -> bool:
        found["delta"] = delta(requests_by_path(await stack.exporter.samples()), before)
        return sum(found["delta"].values()) >= total

    await wait_until(caught_up, f"{total} requests counted by the exporter")
    return found["delta"]


async def test_exporter_counts_requests_per_route_template(stack: Stack) -> None:
    before = requests_by_path(await stack.exporter.samples())
    listed, ids = f"{DEPARTMENTS}/v1/departments", f"{DEPARTMENTS}/v1/departments/{{id}}"
    sent = [  # (path, the path label it is counted under)
        (f"{DEPARTMENTS}/v1/departments", listed),
        (f"{DEPARTMENTS}/v1/departments?limit=1", listed),
        (f"{DEPARTMENTS}/v1/departments?limit=0", listed),  # 400
        *[(f"{DEPARTMENTS}/v1/departments/{i}", ids) for i in stack.department_ids],
        (f"{DEPARTMENTS}/v1/departments/{uuid.uuid4()}", ids),  # 404
        (f"{DEPARTMENTS}/v1/departments/12345", ids),  # numeric id -> {id}
        (f"{DEPARTMENTS}/health", f"{DEPARTMENTS}/health"),
        ("/api/users/v1/users?x=1", "/api/users/v1/users"),  # 503 (users down), templated
        ("/api/nope/anything", "other"),
        (f"{DEPARTMENTS}/v1/departments/a/b/c", "other"),
        ("/docs/index.html", "/docs/"),
    ]
    statuses = [(await fetch("GET", stack.gateway.url + path))[0] for path, _ in sent]
    counts = await _counts_after(stack, before, len(sent))
    expected: dict[tuple[str, str, str], float] = {}
    for (_, label), status in zip(sent, statuses, strict=True):
        key = (label, "GET", str(status))
        expected[key] = expected.get(key, 0.0) + 1
    assert counts == expected
    assert statuses[:4] == [200, 200, 400, 200]
    assert statuses[3 + len(stack.department_ids)] == 404  # the unknown id
    samples = await stack.exporter.samples()
    labelled = {dict(labels).get("path") for (_, labels) in samples}
    assert not any(str(i) in str(labelled) for i in stack.department_ids)  # no raw ids
    count = value(
        samples,
        "nginx_http_request_duration_seconds_count",
        status_code="200",
        method="GET",
        path=ids,
    )
    assert count >= len(stack.department_ids)
    size = value(samples, "nginx_size_bytes_total", status_code="200", method="GET", path=ids)
    assert size > 0


async def test_exporter_follows_rename_and_truncate(stack: Stack) -> None:
    url = f"{stack.gateway.url}{DEPARTMENTS}/v1/departments?limit=1"
    label = (f"{DEPARTMENTS}/v1/departments", "GET", "200")
    log = stack.gateway.access_log

    async def send(n: int) -> None:
        before = requests_by_path(await stack.exporter.samples())
        for _ in range(n):
            assert (await fetch("GET", url))[0] == 200
        counts = await _counts_after(stack, before, n)
        assert counts == {label: float(n)}

    reopened = await stack.exporter.samples()
    renames = value(reopened, "nginx_exporter_log_reopened_total", reason="rename")
    truncates = value(reopened, "nginx_exporter_log_reopened_total", reason="truncate")
    await send(2)
    # logrotate's default: rename, then tell nginx to reopen (a new file appears)
    rotated = log.with_name("access.log.1")
    log.rename(rotated)
    await send(2)  # still written to the renamed file until the reopen: still counted
    stack.gateway.reopen_logs()
    await wait_until(lambda: _true(log.exists()), "nginx reopened access.log")
    await send(3)
    assert log.exists()
    assert rotated.exists()
    # copytruncate-style: the same file emptied in place. send() waited until the exporter
    # counted every line, so it has read to the end: the 2 new lines stay below its offset.
    log.write_bytes(b"")
    await send(2)
    rotated.unlink()
    samples = await stack.exporter.samples()
    assert value(samples, "nginx_exporter_log_reopened_total", reason="rename") == renames + 1
    assert value(samples, "nginx_exporter_log_reopened_total", reason="truncate") == truncates + 1


async def test_malformed_lines_are_counted_not_fatal(stack: Stack) -> None:
    before = await stack.exporter.samples()
    errors = value(before, "nginx_exporter_parse_errors_total")
    text_line = (
        '127.0.0.1 - - [21/Nov/2026:12:00:00 +0000] "GET /api/departments/v1/departments/'
        f'{uuid.uuid4()}?x=1 HTTP/1.1" 404 120 "-" "curl/8" 0.003\n'
    )
    garbage = [
        "not a log line at all\n",
        '{"method": "GET"}\n',  # JSON without the required fields
        '{"broken json\n',
        '{"method":"GET","uri":"/x","status":"abc","body_bytes_sent":1}\n',
        "\x00\xff binary\n",
    ]
    with stack.gateway.access_log.open("a") as handle:
        handle.writelines([*garbage, text_line])

    async def counted() -> bool:
        samples = await stack.exporter.samples()
        return value(samples, "nginx_exporter_parse_errors_total") >= errors + len(garbage)

    await wait_until(counted, "the malformed lines counted")
    after = await stack.exporter.samples()
    assert value(after, "nginx_exporter_parse_errors_total") == errors + len(garbage)
    key = ("nginx_http_requests_total", f"{DEPARTMENTS}/v1/departments/{{id}}", "404")
    before_404 = value(before, key[0], status_code="404", method="GET", path=key[1])
    after_404 = value(after, key[0], status_code="404", method="GET", path=key[1])
    assert after_404 == before_404 + 1  # the combined text line was parsed
    # still alive and counting
    assert (await fetch("GET", f"{stack.gateway.url}{DEPARTMENTS}/health"))[0] == 200
    assert stack.exporter.proc.poll() is None


async def test_stub_status_gauges_are_real(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        # hold one idle keep-alive connection open: nginx counts it as waiting
        async with http.get(f"{stack.gateway.url}{DEPARTMENTS}/health") as resp:
            await resp.read()
        samples = await stack.exporter.samples()
    assert value(samples, "nginx_up") == 1.0
    accepted = value(samples, "nginx_connections_accepted_total")
    handled = value(samples, "nginx_connections_handled_total")
    requests = value(samples, "nginx_http_requests_stub_total")
    assert accepted >= 1
    assert handled == accepted
    assert requests >= accepted
    assert value(samples, "nginx_connections_active") >= 1
    assert value(samples, "nginx_connections_writing") >= 1  # the exporter's own scrape
    for name in ("reading", "waiting"):
        assert (
            "nginx_connections_" + name,
            frozenset(),
        ) in samples
    # the numbers move with traffic
    for _ in range(3):
        await fetch("GET", f"{stack.gateway.url}{DEPARTMENTS}/health")
    later = await stack.exporter.samples()
    assert value(later, "nginx_http_requests_stub_total") >= requests + 3


async def test_docs_serve_the_committed_openapi_documents(stack: Stack) -> None:
    status, headers, body = await fetch("GET", f"{stack.gateway.url}/docs/openapi/departments.json")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body["servers"] == [{"url": DEPARTMENTS}]  # "try it out" goes through NGINX
