"""lib/tracing_otlp.py: the exporter's own encoder writes the bytes the SDK's encoder would
(spans of every shape: attributes of each type, remote and local parents, trace state,
status, links, dropped counts; events and array values through the SDK's own encoder),
and a real OTLP/gRPC receiver gets the same requests from it as from the SDK's exporter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, StatusCode, TraceFlags, TraceState

from lib import tracing_otlp
from tests.otlp_receiver import Receiver

REMOTE = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, True, TraceFlags(1))


def provider(
    resource: Resource | None = None, limits: SpanLimits | None = None
) -> tuple[TracerProvider, InMemorySpanExporter]:
    kept = InMemorySpanExporter()
    made = TracerProvider(
        resource=resource or Resource.create({"service.name": "departments"}),
        span_limits=limits,
        shutdown_on_exit=False,
    )
    made.add_span_processor(SimpleSpanProcessor(kept))
    return made, kept


def remote_parent(state: TraceState | None = None) -> Any:
    context = SpanContext(REMOTE.trace_id, REMOTE.span_id, True, REMOTE.trace_flags, state)
    return trace.set_span_in_context(trace.NonRecordingSpan(context))


def spans_of_every_shape() -> list[ReadableSpan]:
    """What lib/ makes (a server span under a remote parent, query and client children, a
    failed span, an outbox delivery with a link) and what a caller of the SDK could make."""
    made, kept = provider()
    tracer = made.get_tracer("fixup")
    server = tracer.start_span("GET /v1/departments", remote_parent(), SpanKind.SERVER)
    with trace.use_span(server, end_on_exit=False):
        for query in ("ListDepartmentsByNameAsc", "CountDepartments"):
            tracer.start_span(query, None, SpanKind.CLIENT, {"db.system.name": "postgresql"}).end()
        failed = tracer.start_span("GET users", None, SpanKind.CLIENT)
        failed.set_status(StatusCode.ERROR, "NOT_FOUND")
        failed.set_attribute("error.type", "NOT_FOUND")
        failed.set_attribute("http.response.status_code", 404)
        failed.end()
        tracer.start_span("redis.publish", kind=SpanKind.CLIENT).end()
    server.set_attribute("http.response.status_code", 200)
    server.end()
    scalars = {
        "str": "é 日本",
        "empty": "",
        "true": True,
        "false": False,
        "zero": 0,
        "negative": -42,
        "int64 max": (1 << 63) - 1,
        "int64 min": -(1 << 63),
        "float": 2.5,
        "float zero": 0.0,
    }
    tracer.start_span("scalars", attributes=scalars).end()
    ok = tracer.start_span("", kind=SpanKind.PRODUCER)  # an empty name
    ok.set_status(StatusCode.OK)
    ok.end()
    linked = tracer.start_span(
        "outbox deliver points.award",
        trace.set_span_in_context(trace.INVALID_SPAN),
        SpanKind.PRODUCER,
        links=[Link(REMOTE), Link(REMOTE, {"link.attr": 7})],
    )
    linked.end()
    tracer.start_span("state", remote_parent(TraceState([("k", "v"), ("x", "y")]))).end()
    tracer.start_span("consumer", kind=SpanKind.CONSUMER).end()
    # through the SDK's own encoder: events, sequences, an int beyond int64
    evented = tracer.start_span("evented")
    evented.add_event("retry", {"attempt": 2})
    evented.end()
    tracer.start_span("sequence", attributes={"ids": [1, 2, 3]}).end()
    tracer.start_span("bigint", attributes={"big": 1 << 70}).end()
    # limits: dropped attributes, events and links are counted
    limited_provider, limited = provider(
        limits=SpanLimits(max_attributes=1, max_links=1, max_events=0)
    )
    limited_span = limited_provider.get_tracer("fixup").start_span(
        "limited", attributes={"a": 1, "b": 2}, links=[Link(REMOTE), Link(REMOTE)]
    )
    limited_span.add_event("dropped")
    limited_span.end()
    return [*kept.get_finished_spans(), *limited.get_finished_spans()]


def test_the_bytes_are_the_sdk_encoders() -> None:
    spans = spans_of_every_shape()
    assert len(spans) == 14
    for span in spans:  # one at a time: a difference names its span
        assert tracing_otlp.encode_request([span]) == encode_spans([span]).SerializeToString(), (
            span.name
        )
    assert tracing_otlp.encode_request(spans) == encode_spans(spans).SerializeToString()
    # cached names and attribute pairs: the same bytes the second time
    assert tracing_otlp.encode_request(spans) == encode_spans(spans).SerializeToString()


def test_resources_and_scopes_group_as_the_sdk_groups_them() -> None:
    first, first_kept = provider(Resource({"service.name": "a"}, "https://schema/1"))
    second, second_kept = provider(Resource({"service.name": "b"}))
    for made in (first, second, first):
        made.get_tracer("fixup").start_span("x").end()
        made.get_tracer("other", "1.2", schema_url="https://schema/2").start_span("y").end()
        made.get_tracer("fixup").start_span("z").end()
    spans = [*first_kept.get_finished_spans(), *second_kept.get_finished_spans()]
    interleaved = [spans[i] for i in (0, 6, 1, 7, 2, 3, 8, 4, 5)]
    assert tracing_otlp.encode_request(interleaved) == (
        encode_spans(interleaved).SerializeToString()
    )
    assert tracing_otlp.encode_request([]) == encode_spans([]).SerializeToString() == b""


def test_varints_as_protobuf_writes_them() -> None:
    assert tracing_otlp.varint(0) == b"\x00"
    assert tracing_otlp.varint(127) == b"\x7f"
    assert tracing_otlp.varint(300) == b"\xac\x02"
    assert tracing_otlp.varint(-1) == b"\xff" * 9 + b"\x01"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = await Receiver().start()
    yield running
    await running.stop()


async def test_a_real_receiver_gets_what_the_sdk_exporter_sends(receiver: Receiver) -> None:
    spans = spans_of_every_shape()
    ours = tracing_otlp.SpanExporter(endpoint=receiver.endpoint, insecure=True)
    theirs = OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True)
    try:
        assert await asyncio.to_thread(ours.export, spans) is SpanExportResult.SUCCESS
        assert await asyncio.to_thread(theirs.export, spans) is SpanExportResult.SUCCESS
    finally:
        ours.shutdown()
        theirs.shutdown()
    assert receiver.exports == 2, f"the receiver got {receiver.exports} exports"
    mine, sdk = receiver.requests
    assert mine == sdk
    assert mine.SerializeToString() == sdk.SerializeToString()
    half = len(receiver.spans) // 2
    assert receiver.spans[:half] == receiver.spans[half:]
    assert {s.name for s in receiver.spans[:half]} >= {"GET /v1/departments", "CountDepartments"}


async def test_the_exporter_fails_like_the_sdks_when_nothing_listens() -> None:
    from tests.servers import free_port

    ours = tracing_otlp.SpanExporter(
        endpoint=f"http://127.0.0.1:{free_port()}", insecure=True, timeout=0.5
    )
    try:
        result = await asyncio.to_thread(ours.export, spans_of_every_shape()[:1])
    finally:
        ours.shutdown()
    assert result is SpanExportResult.FAILURE
