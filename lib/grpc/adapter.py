"""Serve betterproto2-generated services on grpc.aio: the adapter.

betterproto2 generates grpclib stubs only. Its service base class has `__mapping__()`:
`{"/pkg.Service/Method": Handler(func, cardinality, request_type, reply_type)}`, where
`func(stream)` reads the request with `stream.recv_message()` and answers with
`stream.send_message()`. The adapter turns every entry into a grpc.aio method handler:
a small `_Stream` stands in for grpclib's stream, (de)serialisation goes through
`lib.grpc.codec` (upb where exact, else betterproto2's own bytes), and a
`grpclib.GRPCError` raised by the implementation becomes the same gRPC status. No
per-method glue: a new rpc in the .proto needs only `make proto` and the implementing
method.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

import grpc
import grpclib
import grpclib.const

from lib.db.scope import enter_scope, exit_scope
from lib.errors import ServiceUnavailable
from lib.grpc.codec import codec
from lib.logging import get_logger

log = get_logger("lib.grpc")

Cardinality = grpclib.const.Cardinality

_NOTHING: Any = object()


class Servable(Protocol):
    """A betterproto2-generated service (a subclass of its `<Name>Base`)."""

    def __mapping__(self) -> Mapping[str, grpclib.const.Handler]: ...


class _Stream:
    """What the generated `__rpc_*` functions use of grpclib's server Stream."""

    __slots__ = ("_context", "_request", "_requests", "_streaming_reply", "reply")

    def __init__(
        self,
        context: Any,
        *,
        request: Any = _NOTHING,
        requests: AsyncIterator[Any] | None = None,
        streaming_reply: bool = False,
    ) -> None:
        self._context = context
        self._request = request
        self._requests = requests
        self._streaming_reply = streaming_reply
        self.reply: Any = None

    async def recv_message(self) -> Any:
        if self._requests is not None:
            return await anext(self._requests, None)
        request, self._request = self._request, None
        return None if request is _NOTHING else request

    async def send_message(self, message: Any) -> None:
        if self._streaming_reply:
            await self._context.write(message)
        else:
            self.reply = message


async def _run(func: Callable[[_Stream], Any], stream: _Stream, context: Any) -> None:
    """Run a generated handler in its own database scope (one pooled connection per call,
    lib.db.scope); map grpclib errors to grpc.aio, a busy or lost database to UNAVAILABLE,
    and hide anything unexpected."""
    scope = enter_scope()
    try:
        await func(stream)
    except grpclib.GRPCError as exc:
        await context.abort(grpc.StatusCode[exc.status.name], exc.message or exc.status.name)
    except ServiceUnavailable as exc:
        await context.abort(grpc.StatusCode.UNAVAILABLE, exc.detail)
    except Exception:
        log.exception("grpc_handler_failed")
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")
    finally:
        exit_scope(scope)


def method_handler(entry: grpclib.const.Handler) -> Any:
    """One grpc.aio RpcMethodHandler from one entry of a generated `__mapping__()`."""
    func, cardinality, request_type, reply_type = entry
    deserialize, _ = codec(request_type)
    _, serialize = codec(reply_type)

    async def unary_unary(request: Any, context: Any) -> Any:
        stream = _Stream(context, request=request)
        await _run(func, stream, context)
        return stream.reply

    async def unary_stream(request: Any, context: Any) -> None:
        await _run(func, _Stream(context, request=request, streaming_reply=True), context)

    async def stream_unary(requests: AsyncIterator[Any], context: Any) -> Any:
        stream = _Stream(context, requests=requests)
        await _run(func, stream, context)
        return stream.reply

    async def stream_stream(requests: AsyncIterator[Any], context: Any) -> None:
        await _run(func, _Stream(context, requests=requests, streaming_reply=True), context)

    make, behavior = {
        Cardinality.UNARY_UNARY: (grpc.unary_unary_rpc_method_handler, unary_unary),
        Cardinality.UNARY_STREAM: (grpc.unary_stream_rpc_method_handler, unary_stream),
        Cardinality.STREAM_UNARY: (grpc.stream_unary_rpc_method_handler, stream_unary),
        Cardinality.STREAM_STREAM: (grpc.stream_stream_rpc_method_handler, stream_stream),
    }[cardinality]
    return make(behavior, request_deserializer=deserialize, response_serializer=serialize)


def generic_handlers(service: Servable) -> list[Any]:
    """grpc generic handlers (one per gRPC service name) for a generated service object."""
    by_service: dict[str, dict[str, Any]] = {}
    for path, entry in service.__mapping__().items():
        name, method = path.lstrip("/").rsplit("/", 1)
        by_service.setdefault(name, {})[method] = method_handler(entry)
    return [grpc.method_handlers_generic_handler(n, m) for n, m in by_service.items()]


def service_names(service: Servable) -> list[str]:
    return sorted({path.lstrip("/").rsplit("/", 1)[0] for path in service.__mapping__()})
