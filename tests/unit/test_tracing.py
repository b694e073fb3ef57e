"""lib/tracing.py: off by default (the tracing SDK not even imported, nothing exported, no layer in
the middleware chain), on with OTEL_EXPORTER_OTLP_ENDPOINT; the traceparent rules; query
span names; unsampled requests make no child spans but still pass their context on."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from codegen.naming import snake
from lib import tracing, tracing_lean
from lib.clients.http import JsonHttpClient
from lib.config import ServiceSettings
from lib.db.traced import TracedPgConnection, query_name, sqlc_name, traced
from lib.errors import NotFound, ServiceUnavailable
from lib.http import middleware as mw
from lib.http.app import create_app
from tests.otlp_receiver import Receiver
from tests.servers import free_port

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
        serve_one, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="50"
    )
    assert result["on"] is True
    assert result["traceparent"] is True
    assert {"opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.grpc"} <= set(
        result["loaded"]
    )
    names = {(s.service, s.name) for s in receiver.spans}
    assert names == {("departments", "GET /x"), ("departments", "GET echo")}


def test_the_off_chain_has_no_tracing_layer() -> None:
    assert tracing.ENABLED is False
    settings = ServiceSettings.model_validate({"service": "departments", "database_url": ""})
    app = create_app(settings, routes=web.RouteTableDef(), title="t")
    assert mw.tracing_middleware not in app.middlewares
    assert app.middlewares[0] is mw.request_id_middleware
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
def test_traceparent_rules(value: str | None, parsed: tuple[int, int, int] | None) -> None:
    assert tracing.parse_traceparent(value) == parsed


def test_the_gateway_made_shape() -> None:
    trace_id = 0x0AF7651916CD43DD8448EB211C80319C
    assert tracing.gateway_made(trace_id, 0x0AF7651916CD43DD)
    assert not tracing.gateway_made(trace_id, 0xB7AD6B7169203331)


def _frame_of_generated() -> FrameType | None:
    scope: dict[str, Any] = {"GET_USER_LIST_POINTS": "SELECT 1", "sys": sys}
    exec("def get_user_list_points():\n    return sys._getframe(0)", scope)
    frame: FrameType = scope["get_user_list_points"]()
    return frame


def test_query_names_are_sqlc_names_and_only_for_generated_code() -> None:
    assert query_name(_frame_of_generated()) == "GetUserListPoints"
    assert query_name(sys._getframe(0)) is None  # not generated: no span
    assert query_name(None) is None


def test_every_sqlc_query_name_round_trips_through_its_function_name() -> None:
    names = [
        line.split()[2]
        for path in (ROOT / "sql").rglob("*.sql")
        for line in path.read_text().splitlines()
        if line.startswith("-- name: ")
    ]
    assert len(names) > 100
    assert [n for n in names if sqlc_name(snake(n)) != n] == []


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
        assert seen["traceparent"] == f"00-{trace_id}-{ids['span_id']}-00"  # not sampled
    finally:
        await asyncio.to_thread(tracing.shutdown)
    assert receiver.spans == []


async def test_problems_are_recorded_on_the_server_span_with_their_code(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    assert tracing.configure("departments")
    try:
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
    finally:
        await asyncio.to_thread(tracing.shutdown)
    await receiver.wait_for(lambda r: len(r.spans) == 4, "four server spans")
    by_name = {s.name: s for s in receiver.spans}
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


async def test_a_leaf_span_is_exported_as_the_sdks_child_span_would_be(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    assert tracing.configure("departments")
    try:
        assert tracing.otel.lean is not None  # the default sampler: spans built by hand
        span, token = tracing.start_server_span("GET /x", REMOTE_PARENT)
        try:
            for start in (tracing.start_leaf, tracing.start_child):
                ok = start("GetUser", tracing.CLIENT, {"db.system.name": "postgresql"})
                ok.end()
                failed = start("ListUsers", tracing.CLIENT, {"db.system.name": "mysql"})
                assert failed.is_recording()
                tracing.fail(failed, "UniqueViolationError")
                tracing.fail(failed, "NOT_FOUND", 404)  # again: the last code and status win
                failed.end()
            assert isinstance(ok, type(failed))
            assert type(tracing.start_leaf("x")).__name__ == "Leaf"  # (not ended: not sent)
        finally:
            tracing.end_span(span, token)
        unsampled, token = tracing.start_server_span("GET /y", REMOTE_PARENT[:-2] + "00")
        try:  # an unsampled parent: the SDK's own (non-recording) span
            assert not tracing.start_leaf("GetUser").is_recording()
        finally:
            tracing.end_span(unsampled, token)
    finally:
        await asyncio.to_thread(tracing.shutdown)
    sent = [s for r in receiver.requests for rs in r.resource_spans for ss in rs.scope_spans
            for s in ss.spans]  # fmt: skip
    assert [s.name for s in sent] == ["GetUser", "ListUsers", "GetUser", "ListUsers", "GET /x"]
    server = sent[-1]
    for s in sent[:4]:
        assert s.parent_span_id == server.span_id
        assert s.trace_id == server.trace_id == bytes.fromhex(REMOTE_PARENT[3:35])
        assert s.start_time_unix_nano <= s.end_time_unix_nano
        assert len(s.span_id) == 8
        assert s.span_id != server.span_id
        s.ClearField("span_id")
        s.ClearField("start_time_unix_nano")
        s.ClearField("end_time_unix_nano")
    assert sent[0] == sent[2]  # every other field: name, kind, attributes, status, flags
    assert sent[1] == sent[3]
    assert {a.key: a.value.WhichOneof("value") for a in sent[1].attributes} == {
        "db.system.name": "string_value",
        "error.type": "string_value",
        "http.response.status_code": "int_value",
    }
    assert (sent[1].status.code, sent[1].status.message) == (2, "NOT_FOUND")


@pytest.mark.parametrize(
    ("env", "lean"),
    [
        ({}, True),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, True),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
         True),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}, False),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, True),
        ({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "4"}, False),
        ({"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "1"}, False),
        ({"OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "true"}, False),
    ],
)  # fmt: skip
def test_spans_are_built_by_hand_only_where_the_tracer_would_make_the_same_span(
    env: dict[str, str], lean: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    provider = TracerProvider(shutdown_on_exit=False)
    assert tracing_lean.applies(provider.get_tracer("fixup")) is lean


GATEWAY_MADE = "00-4bf92f3577b34da6a3ce929d0e0e4736-4bf92f3577b34da6-01"
UNSAMPLED_PARENT = REMOTE_PARENT[:-2] + "00"


def one_request_span(traceparent: str | None) -> tuple[str, str, int]:
    """A server span with what a request may do to it; -> (its trace id, span id, flags)."""
    span, token = tracing.start_server_span("GET /x/{id}", traceparent, {"rpc.system": "x"})
    try:
        ids = tracing.log_ids()
        assert tracing.current_traceparent() == (
            f"00-{ids['trace_id']}-{ids['span_id']}-01" if span.is_recording() else
            f"00-{ids['trace_id']}-{ids['span_id']}-00"
        )  # fmt: skip
        tracing.start_leaf("GetUser", tracing.CLIENT, {"db.system.name": "postgresql"}).end()
        span.set_attribute("http.response.status_code", 200)
        span.set_attributes({"rpc.system": "y", "a": 1})  # set again: moves last
        span.add_event("retry", {"attempt": 2}, timestamp=123)
        span.record_exception(ValueError("bad"), timestamp=456)
        tracing.record_problem("SERVICE_UNAVAILABLE", 503)
        span.set_status(tracing.otel.error.__class__.OK)  # OK is final ...
        tracing.fail(span, "NOT_FOUND", 404)  # ... so this changes only the attributes
        span.update_name("GET /y/{id}")
    finally:
        tracing.end_span(span, token)
    span.set_attribute("after", "end")  # ignored: the span has ended
    return ids["trace_id"], ids["span_id"], int(span.get_span_context().trace_flags)


async def test_a_server_span_is_exported_as_the_sdks_would_be(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built by hand (tracing_lean.ServerSpan) or by the SDK's Tracer, a receiver gets the
    same server span, for a remote parent, NGINX's traceparent, none, and an unsampled
    parent (nothing exported)."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    assert tracing.configure("departments")
    parents = (REMOTE_PARENT, GATEWAY_MADE, None, UNSAMPLED_PARENT)
    try:
        lean = [one_request_span(parent) for parent in parents]
        span, token = tracing.start_server_span("x", None)
        tracing.otel.context.detach(token)  # (not ended: not sent)
        assert type(span).__name__ == "ServerSpan"
        monkeypatch.setattr(tracing.otel, "lean", None)
        sdks = [one_request_span(parent) for parent in parents]
    finally:
        await asyncio.to_thread(tracing.shutdown)
    for (lean_trace, _, lean_flags), (sdk_trace, _, sdk_flags), parent in zip(
        lean, sdks, parents, strict=True
    ):
        if parent is not None:  # the trace goes on (the gateway's id is the trace's)
            assert lean_trace == sdk_trace == parent[3:35]
        assert lean_flags == sdk_flags  # sampled, and the W3C random-trace-id bit
    sent = [s for r in receiver.requests for rs in r.resource_spans for ss in rs.scope_spans
            for s in ss.spans]  # fmt: skip
    assert [s.name for s in sent] == ["GetUser", "GET /y/{id}"] * 6  # none when unsampled
    servers = sent[1::2]
    assert [(s.trace_id.hex(), s.span_id.hex()) for s in servers] == [
        ids[:2] for ids in lean[:3] + sdks[:3]
    ]
    for leaf, server in zip(sent[::2], servers, strict=True):
        assert leaf.parent_span_id == server.span_id
    assert (
        servers[0].parent_span_id.hex() == REMOTE_PARENT[36:52] == servers[3].parent_span_id.hex()
    )
    for s in servers:
        s.ClearField("span_id")
        s.ClearField("start_time_unix_nano")
        s.ClearField("end_time_unix_nano")
        if s.parent_span_id.hex() != REMOTE_PARENT[36:52]:
            assert s.parent_span_id == b""  # NGINX made no span: a root with its trace id
        s.ClearField("trace_id")
        for event in s.events:
            if event.name == "exception":
                assert event.time_unix_nano == 456
    assert servers[:3] == servers[3:]  # every other field
    assert {a.key for a in servers[0].attributes} == {
        "rpc.system", "a", "http.response.status_code", "error.type",
    }  # fmt: skip
    assert [e.name for e in servers[0].events] == ["retry", "exception"]
    assert (servers[0].status.code, servers[0].status.message) == (1, "")  # OK stayed


def crowded_request_span() -> None:
    """A server span past the SDK's attribute and event count limits, with values the SDK
    cleans, and a leaf touched after its end."""
    span, token = tracing.start_server_span("GET /z", REMOTE_PARENT)
    try:
        for n in range(10):
            span.set_attribute(f"k{n}", n)
        span.set_attribute("list", [1, 2])  # kept as a tuple by the SDK
        for n in range(3):
            span.add_event(f"e{n}", {"n": n}, timestamp=n + 1)
        leaf = tracing.start_leaf("GetX", tracing.CLIENT, {"db.system.name": "postgresql"})
        leaf.end()
        leaf.set_attribute("late", 1)  # ignored: ended
        leaf.end()  # ignored: one span only
        assert not leaf.is_recording()
    finally:
        tracing.end_span(span, token)


async def test_spans_past_the_sdks_limits_are_exported_as_the_sdks_would_be(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "8")
    monkeypatch.setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "1")
    assert tracing.configure("departments")
    try:
        assert tracing.otel.lean is not None
        crowded_request_span()
        monkeypatch.setattr(tracing.otel, "lean", None)
        crowded_request_span()
    finally:
        await asyncio.to_thread(tracing.shutdown)
    batches = [(rs.resource, ss.scope) for r in receiver.requests for rs in r.resource_spans
               for ss in rs.scope_spans]  # fmt: skip
    assert all(batch == batches[0] for batch in batches)  # the same resource and scope
    sent = [s for r in receiver.requests for rs in r.resource_spans for ss in rs.scope_spans
            for s in ss.spans]  # fmt: skip
    assert [s.name for s in sent] == ["GetX", "GET /z"] * 2
    for s in sent:
        for field in ("span_id", "parent_span_id", "start_time_unix_nano", "end_time_unix_nano"):
            s.ClearField(field)
    assert sent[0] == sent[2]
    assert sent[1] == sent[3]
    server = sent[1]
    assert (server.dropped_attributes_count, server.dropped_events_count) == (3, 2)
    assert [a.key for a in server.attributes] == [f"k{n}" for n in range(3, 10)] + ["list"]
    assert [e.name for e in server.events] == ["e2"]


def test_spans_are_built_by_the_tracer_when_a_processor_would_see_their_start() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    assert tracing_lean.applies(provider.get_tracer("fixup"))
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    assert not tracing_lean.applies(provider.get_tracer("fixup"))
    provider.shutdown()
