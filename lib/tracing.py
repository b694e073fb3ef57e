"""Distributed tracing (OpenTelemetry, W3C trace context), configured here once (ADR 0012).

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not true): then
nothing of the SDK is imported, `ENABLED` stays False and every hook in lib/ is one
attribute test. On, `configure()` (lib/runner.py, once per worker) installs a
TracerProvider with service.name from lib/registry.py, the standard OTEL_* variables
(sampler, batch sizes, headers) and a BatchSpanProcessor with the OTLP/gRPC exporter
(the SDK's, writing its protobuf itself: lib/tracing_otlp.py).

Spans are made by hand where the project already has one place for a concern (the HTTP
middleware, the gRPC interceptor and client, JsonHttpClient, the pool's lease): the
contrib instrumentations would name query spans by their SQL, not by sqlc's query name.
A child span (query, outgoing call, Redis publish) is only made when its parent is
recording: an unsampled request costs its server span and a traceparent header, nothing
more. The server span and the query spans (`start_leaf`) are built straight into the
SDK's ReadableSpan where the SDK's Tracer would make the same spans, at a third of the
cost (lib/tracing_lean.py).

A traceparent made by NGINX (trace id = its `$request_id`, parent id = the first 16 hex
digits of it: no span was exported there) starts a new trace *with that trace id*, so the
sampler decides (1-in-N works behind the gateway) and no span points at a missing parent.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
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
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_NOOP: contextlib.nullcontext[None] = contextlib.nullcontext()
_WANTED_TRACE_ID: contextvars.ContextVar[int] = contextvars.ContextVar("wanted_trace_id", default=0)


class _Otel:
    """The SDK's objects once configured (module attributes, looked up on the hot path)."""

    trace: Any = None  # the opentelemetry.trace module
    context: Any = None  # the opentelemetry.context module
    tracer: Any = None
    provider: Any = None
    kinds: dict[str, Any] = {}  # noqa: RUF012
    error: Any = None  # StatusCode.ERROR
    empty: Any = None  # an empty Context: a root span
    lean: Any = None  # lib.tracing_lean where it makes the SDK's spans (see its `applies`)


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
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    from opentelemetry.trace import SpanKind, StatusCode

    from lib import tracing_lean
    from lib.tracing_otlp import SpanExporter

    class GatewayAwareIds(RandomIdGenerator):
        """A root span takes the trace id NGINX made, when there is one."""

        def generate_trace_id(self) -> int:
            wanted_id = _WANTED_TRACE_ID.get()
            return wanted_id or int(super().generate_trace_id())

    class HashedOnce(Resource):
        """The exporter groups every span by its resource, and a Resource hashes itself
        through json.dumps each time (~11 us a span): it never changes, hash it once."""

        def __init__(self, attributes: Any, schema_url: str | None = None) -> None:
            super().__init__(attributes, schema_url)
            self._hash = super().__hash__()

        def __hash__(self) -> int:
            return self._hash

    name = registry.get(service).name
    made = Resource.create({"service.name": name})  # ours wins over OTEL_SERVICE_NAME
    resource = HashedOnce(made.attributes, made.schema_url)
    provider = TracerProvider(  # no atexit hook: shutdown() is ours, and bounded
        resource=resource, id_generator=GatewayAwareIds(), shutdown_on_exit=False
    )
    # bigger batches than the default 512: fewer exports under load; env still overrides
    batch = int(env.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1024"))
    queue = int(env.get("OTEL_BSP_MAX_QUEUE_SIZE", str(max(8192, batch * 4))))
    provider.add_span_processor(
        BatchSpanProcessor(SpanExporter(), max_queue_size=queue, max_export_batch_size=batch)
    )
    trace.set_tracer_provider(provider)
    otel.trace, otel.context, otel.provider = trace, context, provider
    otel.tracer = provider.get_tracer("fixup")
    otel.kinds = {
        SERVER: SpanKind.SERVER,
        CLIENT: SpanKind.CLIENT,
        INTERNAL: SpanKind.INTERNAL,
        PRODUCER: SpanKind.PRODUCER,
        CONSUMER: SpanKind.CONSUMER,
    }
    otel.error = StatusCode.ERROR
    otel.empty = context.Context()
    otel.lean = tracing_lean if tracing_lean.applies(otel.tracer) else None
    tracing_lean.install(provider, otel.tracer)
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


def parse_traceparent(value: str | None) -> tuple[int, int, int] | None:
    """(trace id, parent span id, flags) of a valid W3C traceparent, else None."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None or match.group(1) == "ff" or (match.group(1) == "00" and match.group(5)):
        return None
    trace_id, span_id = int(match.group(2), 16), int(match.group(3), 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, int(match.group(4), 16)


def gateway_made(trace_id: int, span_id: int) -> bool:
    """NGINX's own traceparent: the parent id is the trace id's first 16 hex digits."""
    return span_id == trace_id >> 64


def _remote_context(parsed: tuple[int, int, int]) -> Any:
    trace = otel.trace
    trace_id, span_id, flags = parsed
    parent = trace.SpanContext(trace_id, span_id, True, trace.TraceFlags(flags & 0x01))
    return trace.set_span_in_context(trace.NonRecordingSpan(parent), otel.empty)


def start_server_span(
    name: str, traceparent: str | None, attributes: Mapping[str, Any] | None = None
) -> tuple[Any, Any]:
    """A server span continuing `traceparent` (or a new trace), made current; -> (span,
    token) for `end_span`. Call only when ENABLED."""
    parsed = parse_traceparent(traceparent)
    gateway = parsed is not None and gateway_made(parsed[0], parsed[1])
    parent = otel.empty if parsed is None or gateway else _remote_context(parsed)
    kind = otel.kinds[SERVER]
    if otel.lean is not None:
        wanted = parsed[0] if gateway and parsed is not None else 0
        span = otel.lean.start_server(name, kind, attributes, parent, wanted)
    elif gateway and parsed is not None:
        reset = _WANTED_TRACE_ID.set(parsed[0])
        try:
            span = otel.tracer.start_span(name, parent, kind, attributes, record_exception=False)
        finally:
            _WANTED_TRACE_ID.reset(reset)
    else:
        span = otel.tracer.start_span(name, parent, kind, attributes, record_exception=False)
    token = otel.context.attach(otel.trace.set_span_in_context(span, otel.empty))
    return span, token


def end_span(span: Any, token: Any) -> None:
    otel.context.detach(token)
    span.end()


def recording() -> bool:
    """Is the current span sampled? (Child spans are made only then.)"""
    return ENABLED and bool(otel.trace.get_current_span().is_recording())


def start_child(name: str, kind: Kind = CLIENT, attributes: Mapping[str, Any] | None = None) -> Any:
    """A child of the current span, not made current (a leaf: a query, a publish)."""
    return otel.tracer.start_span(name, None, otel.kinds[kind], attributes)


def start_leaf(name: str, kind: Kind = CLIENT, attributes: Mapping[str, Any] | None = None) -> Any:
    """start_child for a span that stays a leaf and whose id nothing reads (a query span):
    cheaper, the same span exported. Supports is_recording / set_attribute / set_status
    (so `fail`) and end(); anything else needs start_child."""
    if otel.lean is not None:
        parent = otel.trace.get_current_span().get_span_context()
        if parent.is_valid and parent.trace_flags & 0x01:
            return otel.lean.Leaf(name, otel.kinds[kind], dict(attributes or ()), parent)
    return start_child(name, kind, attributes)


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


def _format(context: Any) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags) & 1:02x}"


def current_traceparent(span_: Any = None) -> str | None:
    """The W3C traceparent of `span_` (default: the current span), None without one."""
    if not ENABLED:
        return None
    context = (span_ or otel.trace.get_current_span()).get_span_context()
    return _format(context) if context.is_valid else None


def inject(headers: dict[str, str], span_: Any = None) -> dict[str, str]:
    """Add `traceparent` for the current span (or `span_`) to outgoing `headers`."""
    value = current_traceparent(span_)
    if value is not None:
        headers[TRACEPARENT] = value
    return headers


def link_to(traceparent: str | None) -> list[Any]:
    """A span link to the context `traceparent` names (the outbox row's writer), or []."""
    parsed = parse_traceparent(traceparent) if ENABLED else None
    if parsed is None:
        return []
    trace = otel.trace
    context = trace.SpanContext(parsed[0], parsed[1], True, trace.TraceFlags(parsed[2] & 0x01))
    return [trace.Link(context)]


def start_root(name: str, kind: Kind, links: list[Any]) -> tuple[Any, Any]:
    """A new trace (a background job's unit of work), linked to `links`, made current."""
    span_ = otel.tracer.start_span(name, otel.empty, otel.kinds[kind], None, links)
    token = otel.context.attach(otel.trace.set_span_in_context(span_, otel.empty))
    return span_, token


def log_ids() -> dict[str, str]:
    """trace_id / span_id of the current span for a log line ({} without one)."""
    if not ENABLED:
        return {}
    context = otel.trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
