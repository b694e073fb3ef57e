"""The OTLP/gRPC span exporter of lib/tracing.py, with a cheaper encoder (ADR 0012).

The SDK's exporter builds a protobuf object per span, per attribute and per value, then
serialises the lot: ~15 us a span on the exporter thread, which holds the GIL meanwhile.
Here the ExportTraceServiceRequest is written as protobuf wire bytes directly: ids, times,
kind and flags packed each time, the rest cached (the resource and the scope once, a
span's name and each attribute key/value pair by value: a service has few of each). A
span of any other shape (events, array or bytes values, integers beyond int64) is written
by the SDK's own encoder and embedded as it is. The bytes are the ones the SDK's encoder
would serialise (tests/unit/test_tracing_otlp.py compares them), and they go out through
the SDK exporter's own channel, headers, timeout, compression and retries: only
`_translate_data` and the stub's request serializer differ.

Imported by lib/tracing.configure() only: the SDK and the exporter stay unloaded when off.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_instrumentation_scope,
    _encode_resource,
)
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import (
    _SPAN_KIND_MAP,
    _encode_span,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
HAS_IS_REMOTE = 0x100  # SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
IS_REMOTE = 0x200  # SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
CACHE_LIMIT = 4096  # distinct names / attribute pairs remembered (beyond: encoded each time)
_INT64 = (-(1 << 63), (1 << 63) - 1)
_pack_q = struct.Struct("<Q").pack
_pack_d = struct.Struct("<d").pack
_pack_i = struct.Struct("<I").pack


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer (a negative int64: its 2**64
    complement, as protobuf writes it)."""
    if value < 0:
        value += 1 << 64
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (`tag` = field number << 3 | 2, as one byte or two)."""
    return _TAGS[tag] + varint(len(payload)) + payload


def _tag(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


_TAGS = {f << 3 | 2: _tag(f, 2) for f in range(1, 16)}
# Span's fields (opentelemetry/proto/trace/v1/trace.proto)
_TRACE_ID = _tag(1, 2) + b"\x10"  # 16 bytes
_SPAN_ID = _tag(2, 2) + b"\x08"
_PARENT_ID = _tag(4, 2) + b"\x08"
_START = _tag(7, 1)
_END = _tag(8, 1)
_FLAGS = _tag(16, 5)
_LINK_TRACE_ID = _TRACE_ID
_LINK_SPAN_ID = _SPAN_ID
_LINK_FLAGS = _tag(6, 5)
_FLAGS_LOCAL = _FLAGS + _pack_i(HAS_IS_REMOTE)
_FLAGS_REMOTE = _FLAGS + _pack_i(HAS_IS_REMOTE | IS_REMOTE)
_STATUS_UNSET = _field(15 << 3 | 2, b"")


class _Fallback(Exception):
    """This span is not of the common shape: the SDK's encoder writes it."""


def _any_value(value: object) -> bytes:
    """AnyValue of a scalar attribute value (a oneof: written even when it is the default)."""
    if isinstance(value, bool):
        return _tag(2, 0) + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return _field(1 << 3 | 2, value.encode())
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise _Fallback
        return _tag(3, 0) + varint(value)
    if isinstance(value, float):
        return _tag(4, 1) + _pack_d(value)
    raise _Fallback  # None, bytes, sequences, mappings: the SDK's rules


_KEY_VALUES: dict[tuple[str, type, object], bytes] = {}
_NAMES: dict[str, bytes] = {}


def _attributes(tag: int, attributes: Any) -> bytes:
    """Repeated KeyValue field `tag` of a span's (or link's) attributes, in their order."""
    if not attributes:
        return b""
    parts = []
    for key, value in attributes.items():
        cache_key = (key, type(value), value)
        try:
            encoded = _KEY_VALUES[cache_key]
        except KeyError:
            encoded = _field(
                tag, _field(1 << 3 | 2, key.encode()) + _field(2 << 3 | 2, _any_value(value))
            )
            if len(_KEY_VALUES) < CACHE_LIMIT:
                _KEY_VALUES[cache_key] = encoded
        except TypeError:  # unhashable: a sequence
            raise _Fallback from None
        parts.append(encoded)
    return b"".join(parts)


def _name(name: str) -> bytes:
    try:
        return _NAMES[name]
    except KeyError:
        encoded = _field(5 << 3 | 2, name.encode()) if name else b""
        if len(_NAMES) < CACHE_LIMIT:
            _NAMES[name] = encoded
        return encoded


_KINDS = {kind: _tag(6, 0) + varint(int(pb_kind)) for kind, pb_kind in _SPAN_KIND_MAP.items()}


def _trace_state(context: Any) -> bytes:
    state = context.trace_state
    if not state:
        return b""
    return _field(3 << 3 | 2, ",".join(f"{k}={v}" for k, v in state.items()).encode())


def _status(status: Any) -> bytes:
    code, message = int(status.status_code.value), status.description
    if not code and not message:
        return _STATUS_UNSET
    body = (_field(2 << 3 | 2, message.encode()) if message else b"") + (
        _tag(3, 0) + varint(code) if code else b""
    )
    return _field(15 << 3 | 2, body)


def _links(links: Sequence[Any]) -> bytes:
    parts = []
    for link in links:
        context = link.context
        body = (
            _LINK_TRACE_ID
            + context.trace_id.to_bytes(16, "big")
            + _LINK_SPAN_ID
            + context.span_id.to_bytes(8, "big")
            + _attributes(4 << 3 | 2, link.attributes)
            + (_tag(5, 0) + varint(link.dropped_attributes) if link.dropped_attributes else b"")
            + _LINK_FLAGS
            + _pack_i(HAS_IS_REMOTE | IS_REMOTE if context.is_remote else HAS_IS_REMOTE)
        )
        parts.append(_field(13 << 3 | 2, body))
    return b"".join(parts)


def _dropped(field: int, count: int) -> bytes:
    return _tag(field, 0) + varint(count) if count else b""


def encode_span(span: ReadableSpan) -> bytes:
    """One Span message's bytes, as the SDK's encoder would serialise them. The fields are
    read from the span's slots (its properties copy the events, links and attributes)."""
    try:
        if span._events:
            raise _Fallback
        context: Any = span._context  # an ended span's: never None
        parent, links = span._parent, span._links
        start, end = span._start_time, span._end_time
        attributes = span._attributes
        # BoundedAttributes / BoundedList count what the span limits dropped
        dropped_attributes = getattr(attributes, "dropped", 0)
        dropped_events = getattr(span._events, "dropped", 0)
        dropped_links = getattr(links, "dropped", 0)
        return b"".join(
            (
                _TRACE_ID,
                context.trace_id.to_bytes(16, "big"),
                _SPAN_ID,
                context.span_id.to_bytes(8, "big"),
                _trace_state(context),
                b"" if parent is None else _PARENT_ID + parent.span_id.to_bytes(8, "big"),
                _name(span._name),
                _KINDS[span._kind],
                _START + _pack_q(start) if start else b"",
                _END + _pack_q(end) if end else b"",
                _attributes(9 << 3 | 2, attributes) if attributes else b"",
                _dropped(10, dropped_attributes) if dropped_attributes else b"",
                _dropped(12, dropped_events) if dropped_events else b"",
                _links(links) if links else b"",
                _dropped(14, dropped_links) if dropped_links else b"",
                _status(span._status),
                _FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL,
            )
        )
    except _Fallback:
        return bytes(_encode_span(span).SerializeToString())


class _Groups:
    """The resource's and the scope's encoded messages, made once per object."""

    def __init__(self) -> None:
        self.resources: dict[int, tuple[Any, bytes]] = {}
        self.scopes: dict[int, tuple[Any, bytes]] = {}

    def resource(self, resource: Any) -> bytes:
        seen = self.resources.get(id(resource))
        if seen is None or seen[0] is not resource:
            encoded = _field(1 << 3 | 2, _encode_resource(resource).SerializeToString())
            seen = (resource, encoded)
            if len(self.resources) < 64:  # the object is kept: its id cannot be reused
                self.resources[id(resource)] = seen
        return seen[1]

    def scope(self, scope: Any) -> bytes:
        seen = self.scopes.get(id(scope))
        if seen is None or seen[0] is not scope:
            encoded = _field(1 << 3 | 2, _encode_instrumentation_scope(scope).SerializeToString())
            seen = (scope, encoded)
            if len(self.scopes) < 64:
                self.scopes[id(scope)] = seen
        return seen[1]


_groups = _Groups()


def encode_request(spans: Sequence[ReadableSpan]) -> bytes:
    """An ExportTraceServiceRequest of `spans`: grouped by resource, then by scope, in the
    order first seen (the SDK's encode_spans)."""
    grouped: dict[Any, dict[Any, list[bytes]]] = {}
    last_resource = last_scope = None
    scopes: dict[Any, list[bytes]] = {}
    bucket: list[bytes] = []
    for span in spans:
        resource, scope = span._resource, span._instrumentation_scope or None
        if resource is not last_resource or scope is not last_scope:
            scopes = grouped.setdefault(resource, {})
            bucket = scopes.setdefault(scope, [])
            last_resource, last_scope = resource, scope
        bucket.append(_field(2 << 3 | 2, encode_span(span)))
    out = []
    for resource, by_scope in grouped.items():
        body = [_groups.resource(resource)]
        for scope, encoded in by_scope.items():
            scope_body = _groups.scope(scope) + b"".join(encoded)
            if scope is not None and scope.schema_url:
                scope_body += _field(3 << 3 | 2, scope.schema_url.encode())
            body.append(_field(2 << 3 | 2, scope_body))
        if resource.schema_url:
            body.append(_field(3 << 3 | 2, resource.schema_url.encode()))
        out.append(_field(1 << 3 | 2, b"".join(body)))
    return b"".join(out)


class _BytesStub:
    """TraceServiceStub whose Export takes the request already serialised."""

    def __init__(self, channel: Any) -> None:
        identity: Callable[[bytes], bytes] = bytes
        self.Export = channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=identity,
            response_deserializer=ExportTraceServiceResponse.FromString,
            _registered_method=True,
        )


class SpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/gRPC span exporter writing its requests with `encode_request`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        stub: Any = _BytesStub
        self._stub = stub  # used again when the exporter reconnects
        self._client = stub(self._channel)

    def _translate_data(self, data: Sequence[ReadableSpan]) -> Any:  # bytes, not a message
        return encode_request(data)
