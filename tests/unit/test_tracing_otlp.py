"""The export path lib/tracing.py configures: the SDK's own OTLP/gRPC exporter. Spans of
every shape lib/ makes (a server span under a remote parent, query and client children, a
failed span, a linked root, attributes of each type, trace state, events) reach a real
OTLP/gRPC receiver as the SDK made them (lib/tracing's own export, with the registry's
service name and the `fixup` scope: tests/unit/test_tracing.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, StatusCode, TraceFlags, TraceState

from tests.otlp_receiver import Receiver

REMOTE = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, True, TraceFlags(1))


def remote_parent(state: TraceState | None = None) -> Any:
    context = SpanContext(REMOTE.trace_id, REMOTE.span_id, True, REMOTE.trace_flags, state)
    return trace.set_span_in_context(trace.NonRecordingSpan(context))


def spans_of_every_shape() -> list[ReadableSpan]:
    """What lib/ makes, through the SDK's Tracer, kept in memory."""
    kept = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "departments"}), shutdown_on_exit=False
    )
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("fixup")
    server = tracer.start_span("GET /v1/departments", remote_parent(), SpanKind.SERVER)
    with trace.use_span(server, end_on_exit=False):
        tracer.start_span("CountDepartments", None, SpanKind.CLIENT,
                          {"db.system.name": "postgresql"}).end()  # fmt: skip
        failed = tracer.start_span("GET users", None, SpanKind.CLIENT)
        failed.set_status(StatusCode.ERROR, "NOT_FOUND")
        failed.set_attribute("error.type", "NOT_FOUND")
        failed.set_attribute("http.response.status_code", 404)
        failed.end()
    server.set_attribute("http.response.status_code", 200)
    server.end()
    scalars = {"str": "é 日本", "true": True, "negative": -42, "float": 2.5, "ids": [1, 2]}
    tracer.start_span("scalars", attributes=scalars).end()
    linked = tracer.start_span(
        "outbox deliver points.award", trace.set_span_in_context(trace.INVALID_SPAN),
        SpanKind.PRODUCER, links=[Link(REMOTE)],
    )  # fmt: skip
    linked.add_event("retry", {"attempt": 2})
    linked.end()
    tracer.start_span("state", remote_parent(TraceState([("k", "v")]))).end()
    provider.shutdown()
    return list(kept.get_finished_spans())


def plain(value: Any) -> Any:
    """An attribute value as the receiver keeps it, an ArrayValue as a list."""
    if hasattr(value, "values"):
        return [getattr(v, v.WhichOneof("value")) for v in value.values]
    return value


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = await Receiver().start()
    yield running
    await running.stop()


async def test_the_stock_exporter_delivers_every_shape_to_a_real_receiver(
    receiver: Receiver,
) -> None:
    spans = spans_of_every_shape()
    exporter = OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True)
    try:
        assert await asyncio.to_thread(exporter.export, spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert receiver.exports == 1
    assert len(receiver.spans) == len(spans) == 6
    for made, got in zip(spans, receiver.spans, strict=True):
        context = made.get_span_context()
        assert context is not None
        assert (got.service, got.name) == ("departments", made.name)
        assert (got.trace_id, got.span_id) == (
            f"{context.trace_id:032x}",
            f"{context.span_id:016x}",
        )
        assert got.parent_id == (f"{made.parent.span_id:016x}" if made.parent else "")
        assert got.kind == made.kind.value + 1  # OTLP counts from UNSPECIFIED
        assert {k: plain(v) for k, v in got.attributes.items()} == {
            k: list(v) if isinstance(v, tuple) else v for k, v in made.attributes.items()
        }
        assert (got.status_code, got.status_message) == (
            made.status.status_code.value,
            made.status.description or "",
        )
        assert got.links == tuple(
            (f"{x.context.trace_id:032x}", f"{x.context.span_id:016x}") for x in made.links
        )
    (request,) = receiver.requests
    sent = {s.name: s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}
    assert [e.name for e in sent["outbox deliver points.award"].events] == ["retry"]
    assert sent["state"].trace_state == "k=v"
    assert {ss.scope.name for rs in request.resource_spans for ss in rs.scope_spans} == {"fixup"}
