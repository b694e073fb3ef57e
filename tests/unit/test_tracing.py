"""lib/tracing.py: off by default (the tracing SDK not even imported, nothing exported, no layer in
the middleware chain), on with OTEL_EXPORTER_OTLP_ENDPOINT; the traceparent rules (NGINX's
own starts a trace with its id); query span names from sqlc's comment line; unsampled
requests make no child spans but still pass their context on."""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from lib import tracing
from lib.clients.http import JsonHttpClient
from lib.config import ServiceSettings
from lib.db.traced import TracedPgConnection, query_name, traced
from lib.errors import NotFound, ServiceUnavailable
from lib.http import middleware as mw
from lib.http.app import create_app
from tests.otlp_receiver import Receiver
from tools.local.ports import free_port

ROOT = Path(__file__).resolve().parents[2]

# one request through create_app whose handler calls another service with JsonHttpClient
SERVE_ONE = textwrap.dedent(
    """
    import asyncio, json, sys
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer
    from lib import tracing
    from lib.clients.http import JsonHttpClient
    from lib.config import ServiceSettings
    from lib.http.app import create_app

    async def main():
        on = tracing.configure("departments")
        seen = {}

        async def echo(request):
            seen.update(request.headers)
            return web.json_response({})

        downstream = TestServer(web.Application())
        downstream.app.router.add_get("/echo", echo)
        await downstream.start_server()
        client = JsonHttpClient("echo", str(downstream.make_url("")), service="departments")
        routes = web.RouteTableDef()

        @routes.get("/x")
        async def handler(request):
            await client.get("/echo", caller=request)
            return web.json_response({})

        settings = ServiceSettings.model_validate(
            {"service": "departments", "database_url": "", "redis_url": ""}
        )
        app = create_app(settings, routes=routes, title="t")
        async with TestClient(TestServer(app)) as http:
            assert (await http.get("/x")).status == 200
            assert (await http.get("/health")).status == 200  # not traced
        await client.close()
        await downstream.close()
        tracing.shutdown()
        # redis-py 8 imports OTel's *metrics* SDK itself when installed (its own opt-in
        # metrics): the tracing SDK and the exporter are ours, imported only when on
        ours = ("opentelemetry.sdk.trace", "opentelemetry.exporter")
        loaded = sorted(m for m in sys.modules if m.startswith(ours))
        print(json.dumps({"on": on, "loaded": loaded, "traceparent": "traceparent" in seen}))

    asyncio.run(main())
    """
)


def serve_one(**env: str) -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", SERVE_ONE],
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    import json

    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = await Receiver().start()
    yield running
    await running.stop()


async def test_off_by_default_the_sdk_is_not_even_imported(receiver: Receiver) -> None:
    result = await asyncio.to_thread(serve_one)
    assert result == {"on": False, "loaded": [], "traceparent": False}
    # an endpoint with the SDK disabled: still off, nothing imported, nothing exported
    disabled = await asyncio.to_thread(
        serve_one, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_SDK_DISABLED="true"
    )
    assert disabled == {"on": False, "loaded": [], "traceparent": False}
    assert receiver.exports == 0


async def test_on_with_an_endpoint_spans_are_exported(receiver: Receiver) -> None:
    result = await asyncio.to_thread(
        serve_one,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="50",
        OTEL_SERVICE_NAME="not-ours",  # the registry's name wins
    )
    assert result["on"] is True
    assert result["traceparent"] is True
    assert {"opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.grpc"} <= set(
        result["loaded"]
    )
    names = {(s.service, s.name) for s in receiver.spans}
    assert names == {("departments", "GET /x"), ("departments", "GET echo")}
    for request in receiver.requests:
        assert [ss.scope.name for rs in request.resource_spans for ss in rs.scope_spans] == [
            "fixup"
        ]


def test_the_off_chain_has_no_tracing_layer() -> None:
    assert tracing.ENABLED is False
    settings = ServiceSettings.model_validate({"service": "departments", "database_url": ""})
    app = create_app(settings, routes=web.RouteTableDef(), title="t")
    assert mw.tracing_middleware not in app.middlewares
    assert app.middlewares[0] is mw.security_headers_middleware
    assert tracing.current_traceparent() is None
    assert tracing.log_ids() == {}
    assert tracing.span("redis.publish", kind=tracing.CLIENT) is tracing.span("x")  # no-op


def test_shutdown_is_bounded_when_the_collector_is_away() -> None:
    script = textwrap.dedent(
        """
        import time
        from lib import tracing
        assert tracing.configure("departments")
        for _ in range(50):
            tracing.end_span(*tracing.start_server_span("GET /x", None))
        started = time.monotonic()
        tracing.shutdown(1.0)
        print(time.monotonic() - started, tracing.ENABLED)
        """
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    away = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), "OTEL_EXPORTER_OTLP_ENDPOINT": away},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    exited = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert exited < 5.0, exited  # and the process exits without waiting for the SDK
    took, still_on = done.stdout.split()
    assert float(took) < 2.0, took  # the SDK alone retries for ~10 s
    assert still_on == "False"


@pytest.fixture
async def on(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Receiver]:
    """Tracing on in this process, into `receiver`, for one test."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    assert tracing.configure("departments")
    try:
        yield receiver
    finally:
        await asyncio.to_thread(tracing.shutdown)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
         (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, 1)),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
         (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, 0)),
        ("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future",
         (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, 1)),
        ("00-00000000000000000000000000000000-b7ad6b7169203331-01", None),
        ("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", None),
        ("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", None),
        ("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", None),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x", None),
        ("garbage", None),
        ("", None),
        (None, None),
    ],
)  # fmt: skip
async def test_traceparent_rules(
    on: Receiver, value: str | None, parsed: tuple[int, int, int] | None
) -> None:
    context = tracing.otel.trace.get_current_span(tracing.extract(value)).get_span_context()
    found = (context.trace_id, context.span_id, int(context.trace_flags))
    assert (found if context.is_valid else None) == parsed
    assert bool(tracing.link_to(value)) is (parsed is not None)


def test_query_names_come_from_sqlcs_comment_line_and_only_from_there() -> None:
    assert query_name("\n-- name: GetUserListPoints :many\nSELECT 1\n") == "GetUserListPoints"
    assert query_name("-- name: GetUser :one\nSELECT 1") == "GetUser"
    assert query_name("-- name: GetUser :one\nSELECT 1") == "GetUser"  # (cached)
    others = (
        "SELECT 1", "SAVEPOINT s1", "", "-- GetUser\nSELECT 1", "-- name:\nSELECT 1",
        "SELECT 1 -- name: GetUser :one", "SELECT 1\n-- name: GetUser :one",
    )  # fmt: skip
    assert [query_name(sql) for sql in others] == [None] * len(others)
    assert query_name(b"-- name: GetUser :one") is None  # not a str: not generated SQL
    assert query_name(None) is None


def test_every_generated_query_is_named_as_in_its_sql_file() -> None:
    names = {
        line.split()[2]
        for path in (ROOT / "sql").rglob("*.sql")
        for line in path.read_text().splitlines()
        if line.startswith("-- name: ")
    }
    named = set()
    for path in sorted((ROOT / "services").glob("*/db/*.py")):
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for key, value in vars(module).items():
            if key.isupper() and isinstance(value, str) and "-- name: " in value:
                named.add(query_name(value))
    assert len(names) > 100
    assert named == names


def test_off_or_unsampled_connections_are_not_wrapped() -> None:
    conn = object()
    assert traced(conn, "postgresql") is conn
    assert not isinstance(traced(conn, "mysql"), TracedPgConnection)


async def test_an_unsampled_request_passes_its_context_on_without_child_spans(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert tracing.configure("departments")
    try:
        seen: dict[str, str] = {}

        async def echo(request: web.Request) -> web.Response:
            seen.update(request.headers)
            return web.json_response({})

        downstream = web.Application()
        downstream.router.add_get("/echo", echo)
        async with TestClient(TestServer(downstream)) as http:
            client = JsonHttpClient("echo", str(http.make_url("")), service="departments")
            span, token = tracing.start_server_span("GET /x", None)
            try:
                assert not tracing.recording()
                assert traced(object(), "postgresql").__class__ is object  # no query spans
                assert tracing.span("redis.publish", kind=tracing.CLIENT) is tracing.span("y")
                await client.get("/echo")
                ids = tracing.log_ids()
            finally:
                tracing.end_span(span, token)
            await client.close()
        trace_id = ids["trace_id"]
        # not sampled; the W3C random-trace-id flag (the SDK's, for a trace id it made)
        assert seen["traceparent"] == f"00-{trace_id}-{ids['span_id']}-02"
    finally:
        await asyncio.to_thread(tracing.shutdown)
    assert receiver.spans == []


async def test_problems_are_recorded_on_the_server_span_with_their_code(on: Receiver) -> None:
    routes = web.RouteTableDef()

    @routes.get("/missing/{id}")
    async def missing(request: web.Request) -> web.Response:
        raise NotFound("no such thing")

    @routes.get("/down")
    async def down(request: web.Request) -> web.Response:
        raise ServiceUnavailable("the database does not answer")

    @routes.get("/bug")
    async def bug(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    settings = ServiceSettings.model_validate({"service": "departments", "database_url": ""})
    app = create_app(settings, routes=routes, title="t")
    assert app.middlewares[0] is mw.tracing_middleware
    async with TestClient(TestServer(app)) as http:
        for path, status in (("/missing/1", 404), ("/down", 503), ("/bug", 500)):
            assert (await http.get(path)).status == status
        assert (await http.post("/down")).status == 405  # aiohttp's own error
    await asyncio.to_thread(tracing.shutdown)  # everything exported
    await on.wait_for(lambda r: len(r.spans) == 4, "four server spans")
    by_name = {s.name: s for s in on.spans}
    error, unset = 2, 0  # OTLP status codes
    found = {
        name: (s.attributes.get("error.type"), s.status_code, s.status_message)
        for name, s in by_name.items()
    }
    assert found == {
        "GET /missing/{id}": ("NOT_FOUND", unset, ""),  # the client's error: not the span's
        "GET /down": ("SERVICE_UNAVAILABLE", error, "SERVICE_UNAVAILABLE"),
        "GET /bug": ("INTERNAL_ERROR", error, "INTERNAL_ERROR"),
        "POST unmatched": ("METHOD_NOT_ALLOWED", unset, ""),  # bounded names, as metrics
    }
    assert by_name["GET /down"].attributes["http.response.status_code"] == 503


REMOTE_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
GATEWAY_MADE = "00-4bf92f3577b34da6a3ce929d0e0e4736-4bf92f3577b34da6-01"
UNSAMPLED_PARENT = REMOTE_PARENT[:-2] + "00"


def one_request_span(traceparent: str | None) -> tuple[str, str]:
    """A server span with a query span and what a request may do to the server span; ->
    its (trace id, span id)."""
    span, token = tracing.start_server_span("GET /x/{id}", traceparent, {"rpc.system": "x"})
    try:
        ids = tracing.log_ids()
        traceparent = tracing.current_traceparent() or ""
        assert traceparent[:53] == f"00-{ids['trace_id']}-{ids['span_id']}-"
        assert int(traceparent[53:], 16) & 1 == span.is_recording()  # the sampled flag
        if tracing.recording():
            query = tracing.start_child("GetUser", tracing.CLIENT, {"db.system.name": "mysql"})
            tracing.fail(query, "UniqueViolationError")
            tracing.fail(query, "NOT_FOUND", 404)  # again: the last code and status win
            query.end()
        span.set_attribute("http.response.status_code", 200)
        tracing.record_problem("SERVICE_UNAVAILABLE", 503)
    finally:
        tracing.end_span(span, token)
    assert tracing.log_ids() == {}  # detached
    return ids["trace_id"], ids["span_id"]


async def test_server_spans_continue_a_callers_trace_and_root_nginxs(on: Receiver) -> None:
    """A remote parent is continued; NGINX's traceparent starts a trace with its trace id
    and no parent; none starts a new trace; an unsampled parent exports nothing."""
    # NGINX's shape: the parent id is the trace id's first 16 hex digits
    assert tracing.gateway_made(int(GATEWAY_MADE[3:35], 16), int(GATEWAY_MADE[36:52], 16))
    assert not tracing.gateway_made(int(REMOTE_PARENT[3:35], 16), int(REMOTE_PARENT[36:52], 16))
    parents = (REMOTE_PARENT, GATEWAY_MADE, None, UNSAMPLED_PARENT)
    made = [one_request_span(parent) for parent in parents]
    await asyncio.to_thread(tracing.shutdown)  # everything exported
    sent = {s.span_id: s for s in on.spans}
    assert [s.name for s in on.spans] == ["GetUser", "GET /x/{id}"] * 3  # none unsampled
    servers = [sent[span_id] for _, span_id in made[:3]]
    assert [s.trace_id for s in servers] == [t for t, _ in made[:3]]
    remote, gateway, new = servers
    assert (remote.trace_id, remote.parent_id) == (REMOTE_PARENT[3:35], REMOTE_PARENT[36:52])
    assert (gateway.trace_id, gateway.parent_id) == (GATEWAY_MADE[3:35], "")
    assert new.parent_id == ""
    assert new.trace_id not in (REMOTE_PARENT[3:35], GATEWAY_MADE[3:35])
    assert made[3][0] == UNSAMPLED_PARENT[3:35]  # not exported, but the trace goes on
    for server in servers:
        assert (server.kind, server.service) == (2, "departments")  # SPAN_KIND_SERVER
        assert server.attributes == {
            "rpc.system": "x",
            "http.response.status_code": 200,
            "error.type": "SERVICE_UNAVAILABLE",
        }
        assert (server.status_code, server.status_message) == (2, "SERVICE_UNAVAILABLE")
    queries = [s for s in on.spans if s.name == "GetUser"]
    assert [(q.trace_id, q.parent_id) for q in queries] == [
        (s.trace_id, s.span_id) for s in servers
    ]
    for query in queries:
        assert query.kind == 3  # SPAN_KIND_CLIENT
        assert query.attributes == {
            "db.system.name": "mysql",
            "error.type": "NOT_FOUND",
            "http.response.status_code": 404,
        }
        assert (query.status_code, query.status_message) == (2, "NOT_FOUND")


async def test_behind_the_gateway_the_services_sampler_decides(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NGINX's traceparent says sampled, but it is a new trace's: a root sampler that
    samples nothing wins over it; a caller's sampled span is still followed."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_always_off")
    assert tracing.configure("departments")
    try:
        for traceparent, sampled in ((GATEWAY_MADE, False), (REMOTE_PARENT, True)):
            span, token = tracing.start_server_span("GET /x", traceparent)
            try:
                assert span.get_span_context().trace_id == int(traceparent[3:35], 16)
                assert tracing.recording() is sampled
            finally:
                tracing.end_span(span, token)
    finally:
        await asyncio.to_thread(tracing.shutdown)
    assert [s.name for s in receiver.spans] == ["GET /x"]


async def test_a_root_span_links_to_the_traceparent_it_is_given(on: Receiver) -> None:
    """The outbox relay's delivery: a trace of its own, linked to the writer's context."""
    span, token = tracing.start_root("outbox deliver x", tracing.PRODUCER,
                                     tracing.link_to(REMOTE_PARENT))  # fmt: skip
    try:
        with tracing.span("redis.publish", kind=tracing.CLIENT) as publish:
            assert publish is not None
            assert publish.is_recording()
        with pytest.raises(KeyError), tracing.span("lookup"):
            raise KeyError("x")
    finally:
        tracing.end_span(span, token)
    assert tracing.link_to(None) == []
    await asyncio.to_thread(tracing.shutdown)
    by_name = {s.name: s for s in on.spans}
    root = by_name["outbox deliver x"]
    assert (root.parent_id, root.kind) == ("", 4)  # SPAN_KIND_PRODUCER
    assert root.trace_id != REMOTE_PARENT[3:35]
    assert root.links == ((REMOTE_PARENT[3:35], REMOTE_PARENT[36:52]),)
    assert [(s.parent_id, s.kind) for s in (by_name["redis.publish"], by_name["lookup"])] == [
        (root.span_id, 3),
        (root.span_id, 1),  # SPAN_KIND_INTERNAL
    ]
    assert (by_name["lookup"].status_code, by_name["lookup"].attributes) == (
        2,
        {"error.type": "KeyError"},
    )
