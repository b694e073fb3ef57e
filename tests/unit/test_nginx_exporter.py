"""observability/nginx_exporter without processes: parsing, route templates, tailing."""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from observability.nginx_exporter.metrics import AccessLogMetrics
from observability.nginx_exporter.parse import (
    ParseError,
    parse_line,
    upstream_seconds,
)
from observability.nginx_exporter.routes import (
    COMMON,
    DOCS,
    OTHER,
    Templater,
    openapi_routes,
    with_openapi,
)
from observability.nginx_exporter.stub_status import StubStatusCollector, parse_stub_status
from observability.nginx_exporter.tail import Follower

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "docs" / "openapi"
# a route table as the OpenAPI documents of every planned service would give it
ROUTES = {  # names services on purpose: sample routes
    "departments": ("/v1/departments", "/v1/departments/{id}"),
    "users": (
        "/v1/auth/password-reset/confirm",
        "/v1/users",
        "/v1/users/{id}",
        "/v1/users/{id}/picture",
        "/v1/users/me/password",
    ),
    "catalog": ("/v1/providers/{id}/services", "/v1/providers/{id}/services/{service_id}"),
    "orders": ("/v1/orders", "/v1/orders/{id}/offers/{offer_id}/accept"),
    "chat": ("/v1/conversations/{id}", "/v1/conversations/{id}/ws"),
}
JSON_LINE = json.dumps(
    {
        "time": "2026-11-21T12:00:00+00:00",
        "request_id": "abc",
        "remote_addr": "127.0.0.1",
        "method": "GET",
        "path": "/api/departments/v1/departments",
        "query": "limit=1&token=[REDACTED]",
        "status": 200,
        "body_bytes_sent": 321,
        "request_time": 0.012,
        "upstream_response_time": "0.010",
        "service": "departments",
    }
)
TEXT_LINE = (
    '10.0.0.1 - alice [21/Nov/2026:12:00:00 +0000] "POST /api/orders/v1/orders HTTP/1.1" '
    '201 88 "https://x.test/a \\"q\\"" "Mozilla/5.0 (X11)" 0.004, 0.006'
)


# --- parse -----------------------------------------------------------------------------


def test_parses_the_gateway_json_line() -> None:
    entry = parse_line(JSON_LINE + "\n")
    assert (entry.method, entry.uri, entry.status, entry.body_bytes) == (
        "GET",
        "/api/departments/v1/departments",
        200,
        321,
    )
    assert entry.request_time == pytest.approx(0.012)
    assert entry.upstream_time == pytest.approx(0.010)
    assert entry.duration == pytest.approx(0.012)


def test_parses_combined_text_with_upstream_time() -> None:
    entry = parse_line(TEXT_LINE)
    assert (entry.method, entry.uri, entry.status, entry.body_bytes) == (
        "POST",
        "/api/orders/v1/orders",
        201,
        88,
    )
    assert entry.request_time is None
    assert entry.upstream_time == pytest.approx(0.010)  # two tries, summed
    assert entry.duration == pytest.approx(0.010)


def test_a_line_from_before_path_and_query_reads_its_uri() -> None:
    old = json.loads(JSON_LINE)
    del old["path"], old["query"]
    old["uri"] = "/api/departments/v1/departments?limit=1"
    entry = parse_line(json.dumps(old))
    assert (entry.uri, entry.status) == ("/api/departments/v1/departments?limit=1", 200)


def test_text_line_without_upstream_and_garbage_request() -> None:
    line = '1.2.3.4 - - [21/Nov/2026:12:00:00 +0000] "\\x16\\x03\\x01" 400 157 "-" "-" -'
    entry = parse_line(line)
    assert (entry.method, entry.uri, entry.status) == ("other", "", 400)
    assert entry.duration is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("0.004", 0.004), ("0.002, 0.003", 0.005), ("0.001 : 0.002", 0.003), ("-", None), ("", None)],
)
def test_upstream_seconds(value: str, seconds: float | None) -> None:
    assert upstream_seconds(value) == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize(
    "line",
    [
        "garbage",
        "{not json",
        "[1, 2]",
        '{"method": "GET", "uri": "/x", "status": 200}',  # no body_bytes_sent
        '{"method": "GET", "uri": "/x", "status": 999, "body_bytes_sent": 1}',
        '{"method": "GET", "uri": "/x", "status": 200, "body_bytes_sent": -1}',
        '{"method": 1, "uri": "/x", "status": 200, "body_bytes_sent": 1}',
        '{"method": "GET", "path": 7, "status": 200, "body_bytes_sent": 1}',
        '{"method": "GET", "status": 200, "body_bytes_sent": 1}',  # neither path nor uri
        '{"method": "GET", "uri": "/x", "status": 200, "body_bytes_sent": 1, "request_time": "x"}',
        '1.2.3.4 - - [21/Nov/2026:12:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',  # no upstream
    ],
)
def test_malformed_lines_raise_parse_error(line: str) -> None:
    with pytest.raises(ParseError):
        parse_line(line)


def test_unknown_methods_are_bounded() -> None:
    entry = parse_line(JSON_LINE.replace('"GET"', '"BREW"'))
    assert entry.method == "other"


# --- routes ----------------------------------------------------------------------------

# ids fixed, not drawn: pytest-xdist's workers must collect the same parameters
ID = "6f1c2b0e-1d2a-4c3b-9e8f-0a1b2c3d4e5f"
OTHER_ID = "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e"


@pytest.mark.parametrize(
    ("uri", "template"),
    [
        ("/api/departments/v1/departments", "/api/departments/v1/departments"),
        ("/api/departments/v1/departments?limit=5&page=2", "/api/departments/v1/departments"),
        (f"/api/departments/v1/departments/{ID}", "/api/departments/v1/departments/{id}"),
        ("/api/departments/v1/departments/123?x", "/api/departments/v1/departments/{id}"),
        ("/api/departments/health", "/api/departments/health"),
        ("/api/departments/v1/openapi.json", "/api/departments/v1/openapi.json"),
        ("/api/users/v1/users/me", "/api/users/v1/users/{id}"),
        ("/api/users/v1/users/me/password", "/api/users/v1/users/me/password"),
        (f"/api/users/v1/users/{ID}/picture", "/api/users/v1/users/{id}/picture"),
        ("/api/users/v1/auth/password-reset/confirm", "/api/users/v1/auth/password-reset/confirm"),
        (
            f"/api/orders/v1/orders/{ID}/offers/{OTHER_ID}/accept",
            "/api/orders/v1/orders/{id}/offers/{id}/accept",
        ),
        (f"/api/chat/v1/conversations/{ID}/ws", "/api/chat/v1/conversations/{id}/ws"),
        (
            f"/api/catalog/v1/providers/me/services/{ID}",
            "/api/catalog/v1/providers/{id}/services/{id}",
        ),
        ("/docs/", "/docs/"),
        ("/docs/openapi/departments.json", "/docs/"),
        ("/api/departments/v1/departments/", OTHER),  # trailing slash: not a route
        ("/api/departments//v1/departments", OTHER),
        ("/api/departments/v1/departments/a/b", OTHER),
        ("/api/nope/v1/x", OTHER),
        ("/wp-login.php", OTHER),
        ("", OTHER),
    ],
)
def test_route_templates(uri: str, template: str) -> None:
    assert Templater(ROUTES).template(uri) == template


@pytest.mark.parametrize("reverse", [False, True], ids=["sorted", "reversed"])
def test_the_most_literal_route_wins(reverse: bool) -> None:
    """Not the first match: `/v1/a/{id}/{id}` comes first in any sorted order, and
    `/v1/{id}/c/d` has one literal segment more for /v1/a/c/d."""
    paths = ["/v1/a/{id}/{id}", "/v1/{id}/c/d", "/v1/{id}/{id}/d"]
    templater = Templater({"s": paths[::-1] if reverse else paths})
    assert templater.template("/api/s/v1/a/c/d") == "/api/s/v1/{id}/c/d"
    assert templater.template("/api/s/v1/a/x/y") == "/api/s/v1/a/{id}/{id}"
    assert templater.template("/api/s/v1/b/x/d") == "/api/s/v1/{id}/{id}/d"
    assert templater.template("/api/s/v1/b/c/x") == OTHER


def test_route_labels_are_bounded() -> None:
    templater = Templater(ROUTES)
    labels = templater.labels()
    seen = {
        templater.template(f"/api/departments/v1/departments/{uuid.uuid4()}") for _ in range(50)
    }
    seen |= {templater.template(f"/random/{i}") for i in range(50)}
    assert seen <= labels
    assert len(seen) == 2


def test_openapi_documents_add_their_paths(tmp_path: Path) -> None:
    (tmp_path / "widgets.json").write_text(
        json.dumps({"paths": {"/v1/widgets": {}, "/v1/widgets/{widget_id}/parts": {}}})
    )
    templater = with_openapi(tmp_path)
    assert (
        templater.template("/api/widgets/v1/widgets/7/parts")
        == "/api/widgets/v1/widgets/{id}/parts"
    )
    assert templater.template("/api/widgets/health") == "/api/widgets/health"
    # only what the documents say: departments has none in this directory
    assert templater.template("/api/departments/v1/departments") == OTHER


def test_the_templates_are_the_committed_openapi_paths() -> None:
    """No hand copy: the exporter's labels are docs/openapi/*.json's paths (+ COMMON)."""
    documents = {p.stem: json.loads(p.read_text())["paths"] for p in OPENAPI.glob("*.json")}
    assert {"departments", "users"} <= set(documents)
    expected = {DOCS, OTHER}
    for service, paths in documents.items():
        for path in [*paths, *COMMON]:
            expected.add(f"/api/{service}" + re.sub(r"\{[^/]+\}", "{id}", path))
    assert with_openapi(OPENAPI).labels() == expected
    assert openapi_routes(OPENAPI) == {svc: list(paths) for svc, paths in documents.items()}


def test_common_routes_are_served_by_every_service() -> None:
    from services.departments.app import create_app

    app = create_app()  # settings from the environment; nothing is opened
    served = {r.canonical for r in app.router.resources()}
    assert set(COMMON) <= served


def test_without_documents_the_exporter_still_labels(tmp_path: Path) -> None:
    templater = with_openapi(tmp_path / "missing")
    assert templater.labels() == {DOCS, OTHER}
    assert templater.template("/api/departments/v1/departments") == OTHER
    assert templater.template("/docs/index.html") == DOCS


# --- tail ------------------------------------------------------------------------------


def append(path: Path, text: str) -> None:
    with path.open("a") as handle:
        handle.write(text)


def test_existing_file_is_read_from_its_end(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("old 1\nold 2\n")
    follower = Follower(log)
    assert follower.poll() == []
    append(log, "new 1\nnew ")
    assert follower.poll() == ["new 1"]
    append(log, "2\n")
    assert follower.poll() == ["new 2"]


def test_from_start_and_a_file_created_later(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    follower = Follower(log)
    assert follower.poll() == []  # not there yet
    log.write_text("first\n")
    assert follower.poll() == ["first"]  # appeared later: read from its start
    other = tmp_path / "other.log"
    other.write_text("a\nb\n")
    assert Follower(other, from_start=True).poll() == ["a", "b"]


def test_rename_then_new_file(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    follower = Follower(log)
    follower.poll()
    append(log, "before\n")
    log.rename(tmp_path / "access.log.1")
    assert follower.poll() == ["before"]
    append(tmp_path / "access.log.1", "late write to the old file\n")
    assert follower.poll() == ["late write to the old file"]  # path missing: stay on old
    log.write_text("after 1\n")
    append(tmp_path / "access.log.1", "last old\n")
    assert follower.poll() == ["last old", "after 1"]
    assert follower.rotations == 1
    append(log, "after 2\n")
    assert follower.poll() == ["after 2"]


def test_truncate_in_place(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    follower = Follower(log)
    follower.poll()
    append(log, "a long line before the truncation\n")
    assert follower.poll() == ["a long line before the truncation"]
    with log.open("r+") as handle:
        handle.truncate(0)
    append(log, "x\n")
    assert follower.poll() == ["x"]
    assert follower.truncations == 1


def test_big_backlog_is_read_in_chunks(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    follower = Follower(log, chunk=64)
    follower.poll()
    append(log, "".join(f"line {i}\n" for i in range(100)))
    got: list[str] = []
    for _ in range(100):
        got += follower.poll()
    assert got == [f"line {i}" for i in range(100)]
    os.remove(log)


# --- stub_status and metrics -----------------------------------------------------------

STUB = """Active connections: 291
server accepts handled requests
 16630948 16630947 31070465
Reading: 6 Writing: 179 Waiting: 106
"""


def test_stub_status_page() -> None:
    status = parse_stub_status(STUB)
    assert (status.active, status.accepted, status.handled, status.requests) == (
        291,
        16630948,
        16630947,
        31070465,
    )
    assert (status.reading, status.writing, status.waiting) == (6, 179, 106)
    with pytest.raises(ValueError, match="stub_status"):
        parse_stub_status("<html>")


def test_stub_status_collector_series() -> None:
    registry = CollectorRegistry()
    collector = StubStatusCollector()
    registry.register(collector)
    collector.update(None)
    assert registry.get_sample_value("nginx_up") == 0
    assert registry.get_sample_value("nginx_connections_active") is None
    collector.update(parse_stub_status(STUB))
    assert registry.get_sample_value("nginx_up") == 1
    assert registry.get_sample_value("nginx_connections_waiting") == 106
    assert registry.get_sample_value("nginx_connections_accepted_total") == 16630948
    assert registry.get_sample_value("nginx_http_requests_stub_total") == 31070465


def test_metrics_from_lines() -> None:
    registry = CollectorRegistry()
    metrics = AccessLogMetrics(registry, Templater(ROUTES))
    for line in (JSON_LINE, JSON_LINE, TEXT_LINE, "", "junk", '{"junk": 1}'):
        metrics.observe_line(line)
    labels = {"status_code": "200", "method": "GET", "path": "/api/departments/v1/departments"}
    assert registry.get_sample_value("nginx_http_requests_total", labels) == 2
    assert registry.get_sample_value("nginx_size_bytes_total", labels) == 642
    assert registry.get_sample_value("nginx_http_request_duration_seconds_count", labels) == 2
    orders = {"status_code": "201", "method": "POST", "path": "/api/orders/v1/orders"}
    assert registry.get_sample_value("nginx_http_requests_total", orders) == 1
    assert registry.get_sample_value("nginx_exporter_parse_errors_total") == 2
    assert registry.get_sample_value("nginx_exporter_lines_total") == 5  # blank: not a line
