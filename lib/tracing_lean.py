"""Spans built straight into the SDK's ReadableSpan: a third of the Tracer's cost.

Spans built straight into the SDK's ReadableSpan (ADR 0012), imported by lib/tracing.py
only when tracing is on.

The SDK's Tracer and Span cost ~150 k instructions a span (sampler call, locks, bounded
containers, a copy at the end); a request has a server span and a span per query. Where
the SDK would make the same span (`applies`), these make it for a third of that: the same
ids, sampler decision, attributes, status and events, handed to the provider's span
processor at their end (tests/unit/test_tracing.py compares what a receiver gets).

- `Leaf`: a span with no children whose id nothing reads (a query, lib/db/traced.py); its
  id is made at its end.
- `ServerSpan`: the current span of a request (HTTP or gRPC): its id is made at its start,
  children and log lines read it.
"""

from __future__ import annotations

from time import time_ns
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk import trace as sdk
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.trace._tracer_metrics import NoOpTracerMetrics
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

UNSET = Status(StatusCode.UNSET)
PLAIN = (str, int, float, bool)  # attribute values the SDK keeps as they are
LEAF_ATTRIBUTES = 8  # room a span needs (a query span has 2-4)


def applies(tracer: Any) -> bool:
    """Are spans built here exactly as the SDK's Tracer would make them? A sampler that
    records every child of a sampled local parent as it is (always_on, or any parentbased_*
    one: the SDK's defaults), no internal SDK metrics, the tracer enabled, no attribute
    value length limit (span or event), room for a span's few attributes, and only batch
    span processors (they do nothing at a span's start, which is not reported here).
    Otherwise lib/tracing uses the Tracer."""
    sampler = tracer.sampler
    records_children = sampler is sampling.ALWAYS_ON or (
        isinstance(sampler, sampling.ParentBased)
        and sampler._local_parent_sampled is sampling.ALWAYS_ON
    )
    limits = tracer._span_limits
    processors = tracer.span_processor._span_processors
    return bool(
        records_children
        and isinstance(getattr(tracer, "_tracer_metrics", None), NoOpTracerMetrics)
        and tracer._is_enabled()
        and limits.max_span_attribute_length is None
        and limits.max_attribute_length is None
        and (limits.max_span_attributes is None or limits.max_span_attributes >= LEAF_ATTRIBUTES)
        and all(isinstance(p, BatchSpanProcessor) for p in processors)
    )


class Kit:
    """What these spans need from the SDK, looked up once."""

    def __init__(self, provider: Any, tracer: Any) -> None:
        self.processor = provider._active_span_processor
        self.tracer = tracer  # its resource: the SDK renews it after a fork
        self.scope = tracer._instrumentation_scope
        self.info = tracer.instrumentation_info
        self.sampler = tracer.sampler
        limits = tracer._span_limits
        self.attributes_limit = limits.max_span_attributes
        self.events_limit = limits.max_events
        self.event_attributes = limits.max_event_attributes
        self.new_span_id = provider.id_generator.generate_span_id
        self.new_trace_id = provider.id_generator.generate_trace_id
        self.random_ids = provider.id_generator.is_trace_id_random()
        random = TraceFlags.RANDOM_TRACE_ID
        # a sampled child's flags: SAMPLED, and the parent's random-trace-id bit (the SDK's)
        self.flags = {
            parent: TraceFlags(TraceFlags.SAMPLED | (parent & random)) for parent in range(256)
        }


class _Lean:
    """The SDK Span's rules for attributes and status, shared by both kinds."""

    __slots__ = ("attributes", "ended", "status")

    def __init__(self, attributes: dict[str, Any]) -> None:
        self.attributes = attributes
        self.status = UNSET
        self.ended = False

    def is_recording(self) -> bool:
        return not self.ended

    def set_attribute(self, key: str, value: Any) -> None:
        if self.is_recording():
            self.attributes.pop(key, None)  # set again, a key moves last (BoundedAttributes)
            self.attributes[key] = value

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """OK is final and UNSET is ignored (the SDK's rules)."""
        if not self.is_recording() or self.status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self.status = status
        elif isinstance(status, StatusCode) and status is not StatusCode.UNSET:
            self.status = Status(status, description)


class Leaf(_Lean):
    """A span with no children and no context of its own (a query span)."""

    __slots__ = ("kind", "name", "parent", "start")

    def __init__(self, name: str, kind: Any, attributes: dict[str, Any], parent: Any) -> None:
        super().__init__(attributes)
        self.name, self.kind, self.parent = name, kind, parent
        self.start = time_ns()

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        kit, parent = _kit, self.parent
        context = SpanContext(
            parent.trace_id,
            kit.new_span_id(),
            False,
            kit.flags[parent.trace_flags],
            parent.trace_state,
        )
        _export(kit, self, context, None)


class ServerSpan(_Lean, trace.Span):
    """A request's server span: made current, read by its children and the log lines."""

    def __init__(
        self, name: str, kind: Any, attributes: dict[str, Any], parent: Any, context: Any
    ) -> None:
        super().__init__(attributes)
        self.name, self.kind, self.parent, self.context = name, kind, parent, context
        self.events: BoundedList[sdk.Event] | None = None  # made by the first event
        self.start = time_ns()

    def get_span_context(self) -> SpanContext:
        return self.context  # type: ignore[no-any-return]

    def set_attributes(self, attributes: Any) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def update_name(self, name: str) -> None:
        if not self.ended:
            self.name = name

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        if not self.ended:
            if self.events is None:
                self.events = BoundedList(_kit.events_limit)
            bounded = BoundedAttributes(_kit.event_attributes, attributes, immutable=True)
            self.events.append(sdk.Event(name, bounded, timestamp))

    # the SDK's: an "exception" event with its type, message and stack trace
    record_exception = sdk.Span.record_exception

    def end(self, end_time: int | None = None) -> None:
        if not self.ended:
            self.ended = True
            _export(_kit, self, self.context, self.events, end_time)


def start_server(name: str, kind: Any, attributes: Any, parent_context: Any, trace_id: int) -> Any:
    """What Tracer.start_span makes for a request's span: the sampler asked, then a
    ServerSpan, or the SDK's NonRecordingSpan when it is not recorded. `parent_context`
    holds the remote parent, or none for a new trace; `trace_id`: NGINX's id for that new
    trace, or 0 to make one."""
    kit = _kit
    parent: Any = trace.get_current_span(parent_context).get_span_context()
    if not parent.is_valid:
        parent = None
    if parent is None:
        trace_id = trace_id or kit.new_trace_id()
        random = kit.random_ids
    else:
        trace_id, random = parent.trace_id, parent.trace_flags.random_trace_id
    result = kit.sampler.should_sample(parent_context, trace_id, name, kind, attributes, ())
    flags = TraceFlags.SAMPLED if result.decision.is_sampled() else TraceFlags.DEFAULT
    if random:
        flags |= TraceFlags.RANDOM_TRACE_ID
    context = SpanContext(trace_id, kit.new_span_id(), False, TraceFlags(flags), result.trace_state)
    if not result.decision.is_recording():
        return trace.NonRecordingSpan(context)
    return ServerSpan(name, kind, dict(result.attributes or ()), parent, context)


def _export(
    kit: Kit, span: Leaf | ServerSpan, context: Any, events: Any, end_time: int | None = None
) -> None:
    attributes: Any = span.attributes
    limit = kit.attributes_limit
    if (limit is not None and len(attributes) > limit) or not all(
        type(key) is str and key and type(value) in PLAIN for key, value in attributes.items()
    ):  # rare: the SDK's container drops the oldest and cleans keys and values
        attributes = BoundedAttributes(limit, attributes, immutable=True)
    kit.processor.on_end(
        sdk.ReadableSpan(
            span.name,
            context,
            span.parent,
            kit.tracer.resource,
            attributes,
            events=events or (),
            kind=span.kind,
            instrumentation_info=kit.info,
            status=span.status,
            start_time=span.start,
            end_time=end_time if end_time is not None else time_ns(),
            instrumentation_scope=kit.scope,
        )
    )


_kit: Kit  # install() sets it


def install(provider: Any, tracer: Any) -> None:
    """Called by lib/tracing.configure once the provider exists."""
    global _kit
    _kit = Kit(provider, tracer)
