"""Distributed tracing (OpenTelemetry, W3C trace context), configured here once (ADR 0012).

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not true): then
nothing of the SDK is imported, `ENABLED` stays False and every hook in lib/ is one
attribute test. On, `configure()` (lib/runner.py, once per worker) installs the SDK's
TracerProvider with service.name from lib/registry.py, the standard OTEL_* variables
(sampler, batch sizes, headers), a BatchSpanProcessor and the SDK's OTLP/gRPC exporter.
Everything goes through the OpenTelemetry public API: the Tracer, the context, the W3C
propagator, and an IdGenerator (the SDK's seam for trace ids).

Spans are made by hand where the project already has one place for a concern (the HTTP
middleware, the gRPC interceptor and client, JsonHttpClient, the pool's lease): the
contrib instrumentations would name query spans by their SQL, not by sqlc's query name
(ADR 0012 weighs each). A child span (query, outgoing call, Redis publish) is only made
when its parent is recording: an unsampled request costs its server span and a
traceparent header, nothing more.

A traceparent made by NGINX (trace id = its `$request_id`, parent id = the first 16 hex
digits of it: no span was exported there) starts a new trace *with that trace id*, so the
sampler decides (1-in-N works behind the gateway) and no span points at a missing parent.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from lib import registry

Kind = Literal["server", "client", "internal", "producer", "consumer"]
SERVER: Kind = "server"
CLIENT: Kind = "client"
INTERNAL: Kind = "internal"
PRODUCER: Kind = "producer"
CONSUMER: Kind = "consumer"
TRACEPARENT = "traceparent"

ENABLED = False  # read as `tracing.ENABLED` at call time: configure() flips it
_NOOP: contextlib.nullcontext[None] = contextlib.nullcontext()
# the trace id the next root span takes (NGINX's), read by the IdGenerator; 0: a random one
_WANTED_TRACE_ID: contextvars.ContextVar[int] = contextvars.ContextVar("wanted_trace_id", default=0)


class _Otel:
    """The SDK's objects once configured (module attributes, looked up on the hot path)."""

    trace: Any = None  # the opentelemetry.trace module
    context: Any = None  # the opentelemetry.context module
    tracer: Any = None
    provider: Any = None
    propagator: Any = None  # the W3C TraceContextTextMapPropagator (traceparent, tracestate)
    kinds: dict[str, Any] = {}  # noqa: RUF012
    error: Any = None  # StatusCode.ERROR
    empty: Any = None  # an empty Context: a root span


otel = _Otel()


def wanted(env: Mapping[str, str] = os.environ) -> bool:
    """Is tracing asked for? An endpoint, and the SDK not disabled (the standard variables)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip())


def configure(service: str) -> bool:
    """Install the tracer provider when `wanted()`; -> whether tracing is on. Idempotent.
    The exporter and the sampler read the standard OTEL_* variables themselves."""
    global ENABLED
    env = os.environ
    if ENABLED or not wanted(env):
        return ENABLED
    from opentelemetry import context, trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
    from opentelemetry.trace import SpanKind, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    class GatewayIds(IdGenerator):
        """Random ids, but a root span takes the trace id NGINX made when there is one
        (`_WANTED_TRACE_ID`): the SDK's public seam for a root span's trace id."""

        random = RandomIdGenerator()

        def generate_span_id(self) -> int:
            return self.random.generate_span_id()

        def generate_trace_id(self) -> int:
            return _WANTED_TRACE_ID.get() or self.random.generate_trace_id()

        def is_trace_id_random(self) -> bool:
            return True  # NGINX's $request_id is 16 random bytes too

    name = registry.get(service).name
    resource = Resource.create({"service.name": name})  # ours wins over OTEL_SERVICE_NAME
    provider = TracerProvider(  # no atexit hook: shutdown() is ours, and bounded
        resource=resource, id_generator=GatewayIds(), shutdown_on_exit=False
    )
    # bigger batches than the default 512: fewer exports under load; env still overrides
    batch = int(env.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1024"))
    queue = int(env.get("OTEL_BSP_MAX_QUEUE_SIZE", str(max(8192, batch * 4))))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(), max_queue_size=queue, max_export_batch_size=batch)
    )
    trace.set_tracer_provider(provider)
    otel.trace, otel.context, otel.provider = trace, context, provider
    otel.tracer = provider.get_tracer("fixup")
    otel.propagator = TraceContextTextMapPropagator()
    otel.kinds = {
        SERVER: SpanKind.SERVER,
        CLIENT: SpanKind.CLIENT,
        INTERNAL: SpanKind.INTERNAL,
        PRODUCER: SpanKind.PRODUCER,
        CONSUMER: SpanKind.CONSUMER,
    }
    otel.error = StatusCode.ERROR
    otel.empty = context.Context()
    ENABLED = True
    return True


def shutdown(timeout_s: float = 5.0) -> None:
    """Export what is queued, then stop; tracing is off from here on. Bounded: with the
    collector away the SDK would retry for its own export timeout and more, and a
    worker's exit must not wait for that (the spans still queued are lost)."""
    global ENABLED
    ENABLED = False
    provider, otel.provider = otel.provider, None
    if provider is None:
        return

    def close() -> None:
        provider.force_flush(int(timeout_s * 1000))
        provider.shutdown()

    closing = threading.Thread(target=close, name="tracing-shutdown", daemon=True)
    closing.start()
    closing.join(timeout_s)


def extract(traceparent: str | None) -> Any:
    """The Context of a valid W3C `traceparent` (its span context, remote), else an empty
    one: the SDK's propagator reads it and decides what is valid. Call only when ENABLED."""
    if not traceparent:
        return otel.empty
    return otel.propagator.extract({TRACEPARENT: traceparent}, otel.empty)


def gateway_made(trace_id: int, span_id: int) -> bool:
    """NGINX's own traceparent: the parent id is the trace id's first 16 hex digits."""
    return span_id == trace_id >> 64


def start_server_span(
    name: str, traceparent: str | None, attributes: Mapping[str, Any] | None = None
) -> tuple[Any, Any]:
    """A server span continuing `traceparent` (or a new trace), made current; -> (span,
    token) for `end_span`. Call only when ENABLED."""
    trace, tracer, kind = otel.trace, otel.tracer, otel.kinds[SERVER]
    parent = extract(traceparent)
    remote = trace.get_current_span(parent).get_span_context()
    if remote.is_valid and gateway_made(remote.trace_id, remote.span_id):
        wanted_id = _WANTED_TRACE_ID.set(remote.trace_id)  # a root, with NGINX's trace id
        try:
            span = tracer.start_span(name, otel.empty, kind, attributes, record_exception=False)
        finally:
            _WANTED_TRACE_ID.reset(wanted_id)
    else:
        span = tracer.start_span(name, parent, kind, attributes, record_exception=False)
    token = otel.context.attach(trace.set_span_in_context(span, otel.empty))
    return span, token


def end_span(span: Any, token: Any) -> None:
    otel.context.detach(token)
    span.end()


def recording() -> bool:
    """Is the current span sampled? (Child spans are made only then.)"""
    return ENABLED and bool(otel.trace.get_current_span().is_recording())


def start_child(name: str, kind: Kind = CLIENT, attributes: Mapping[str, Any] | None = None) -> Any:
    """A child of the current span, not made current (a leaf: a query, a call)."""
    return otel.tracer.start_span(name, None, otel.kinds[kind], attributes)


def fail(span: Any, code: str, status: int | None = None) -> None:
    """Mark `span` failed with the problem `code` (and the HTTP status when there is one)."""
    if span.is_recording():
        span.set_status(otel.error, code)
        span.set_attribute("error.type", code)
        if status is not None:
            span.set_attribute("http.response.status_code", status)


def record_problem(code: str, status: int) -> None:
    """The current (server) span answers with a problem: its code as `error.type`; a 5xx
    also sets the span's status to ERROR (a 4xx is the client's error, not the server's)."""
    if not ENABLED:
        return
    current = otel.trace.get_current_span()
    if not current.is_recording():
        return
    current.set_attribute("error.type", code)
    if status >= 500:
        current.set_status(otel.error, code)


@contextlib.contextmanager
def _child(name: str, kind: Kind, attributes: Mapping[str, Any] | None) -> Iterator[Any]:
    span = start_child(name, kind, attributes)
    try:
        with otel.trace.use_span(span, end_on_exit=False, record_exception=False):
            yield span
    except BaseException as exc:
        fail(span, type(exc).__name__)
        raise
    finally:
        span.end()


def span(
    name: str, *, kind: Kind = INTERNAL, attributes: Mapping[str, Any] | None = None
) -> contextlib.AbstractContextManager[Any]:
    """`with tracing.span("redis.publish", kind=tracing.CLIENT): ...` - a child of the
    current span while the block runs (an exception marks it failed); a shared no-op when
    tracing is off or the request is not sampled. Yields the span, or None."""
    if not recording():
        return _NOOP
    return _child(name, kind, attributes)


def inject(headers: dict[str, str], span_: Any = None) -> dict[str, str]:
    """Add `traceparent` (and `tracestate`, when there is one) of the current span, or of
    `span_`, to outgoing `headers`: the SDK's W3C propagator writes them."""
    if ENABLED:
        trace = otel.trace
        context = trace.set_span_in_context(span_ or trace.get_current_span(), otel.empty)
        otel.propagator.inject(headers, context)
    return headers


def current_traceparent(span_: Any = None) -> str | None:
    """The W3C traceparent of `span_` (default: the current span), None without one."""
    return inject({}, span_).get(TRACEPARENT) if ENABLED else None


def link_to(traceparent: str | None) -> list[Any]:
    """A span link to the context `traceparent` names (the outbox row's writer), or []."""
    if not ENABLED:
        return []
    linked = otel.trace.get_current_span(extract(traceparent)).get_span_context()
    return [otel.trace.Link(linked)] if linked.is_valid else []


def start_root(name: str, kind: Kind, links: list[Any]) -> tuple[Any, Any]:
    """A new trace (a background job's unit of work), linked to `links`, made current."""
    span_ = otel.tracer.start_span(name, otel.empty, otel.kinds[kind], None, links)
    token = otel.context.attach(otel.trace.set_span_in_context(span_, otel.empty))
    return span_, token


def log_ids() -> dict[str, str]:
    """trace_id / span_id of the current span for a log line ({} without one)."""
    if not ENABLED:
        return {}
    trace = otel.trace
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": trace.format_trace_id(context.trace_id),
        "span_id": trace.format_span_id(context.span_id),
    }
