"""Server interceptors: the request id, then one access-log line and the metrics per call.

The request id is kept or made, bound to every log line, echoed in trailing metadata."""

from __future__ import annotations

import inspect
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc
import structlog

from lib.logging import access_log
from lib.metrics import GRPC_DURATION, GRPC_HANDLED

REQUEST_ID_KEY = "x-request-id"
REQUEST_ID_FORMAT = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")  # as lib.http's middleware

Behavior = Callable[..., Any]


_CONSTRUCTORS = {  # (request streaming, response streaming) -> grpc's public constructor
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def _wrap(handler: Any, around: Callable[[Behavior], Behavior]) -> Any:
    """The same RpcMethodHandler with its behaviour wrapped, built anew through grpc's
    public constructors (grpc.RpcMethodHandler's documented attributes, no namedtuple API)."""
    if handler is None:
        return None
    field, construct = _CONSTRUCTORS[handler.request_streaming, handler.response_streaming]
    return construct(
        around(getattr(handler, field)),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _around(
    behavior: Behavior,
    enter: Callable[[Any], Any],
    leave: Callable[[Any, BaseException | None], None],
) -> Behavior:
    """`enter(context)` before and `leave(state, error)` after a coroutine or an async
    generator behaviour (health Watch and reflection stream replies)."""
    if inspect.isasyncgenfunction(behavior):

        async def generate(request: Any, context: Any) -> AsyncIterator[Any]:
            state = enter(context)
            try:
                async for item in behavior(request, context):
                    yield item
            except BaseException as exc:
                leave(state, exc)
                raise
            leave(state, None)

        return generate

    async def call(request: Any, context: Any) -> Any:
        state = enter(context)
        try:
            result = await behavior(request, context)
        except BaseException as exc:
            leave(state, exc)
            raise
        leave(state, None)
        return result

    return call


def metadata_value(metadata: Iterable[tuple[str, Any]] | None, name: str) -> str | None:
    """The first `name` entry of a call's metadata when it is text, else None."""
    for key, value in metadata or ():
        if key == name:
            return value if isinstance(value, str) else None
    return None


def incoming_request_id(metadata: Iterable[tuple[str, Any]] | None) -> str:
    """The caller's x-request-id when it is well-formed, else a new UUID (docs/api.md,
    "Request id")."""
    rid = metadata_value(metadata, REQUEST_ID_KEY)
    return rid if rid is not None and REQUEST_ID_FORMAT.match(rid) else str(uuid.uuid4())


class RequestIdInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Keep or replace `x-request-id`, bind it into structlog's context for every log line
    of the call, and echo it in the trailing metadata (set, not sent: an explicit
    initial-metadata send costs an extra write per call)."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        rid = incoming_request_id(details.invocation_metadata)

        def enter(context: Any) -> None:
            context.set_trailing_metadata(((REQUEST_ID_KEY, rid),))
            structlog.contextvars.bind_contextvars(request_id=rid)

        def leave(_: None, __: BaseException | None) -> None:
            # unbound, not reset by token: a stream's aclose may run in another context
            structlog.contextvars.unbind_contextvars("request_id")

        return _wrap(handler, lambda behavior: _around(behavior, enter, leave))


def status_of(context: Any, error: BaseException | None) -> str:
    """The gRPC status name the call ends with."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if error is None:
        return "OK"
    if not isinstance(error, Exception):
        return "CANCELLED"  # the client went away or its deadline passed
    return "UNKNOWN"


class AccessInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """One JSON line per call (method, code, duration_ms, request_id) and the
    `grpc_server_handled_total{method,code}` / `grpc_server_handling_seconds{method}`
    metrics. Unknown methods are not counted (bounded labels)."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        method = details.method

        def enter(context: Any) -> tuple[Any, float]:
            return context, time.perf_counter()

        def leave(state: tuple[Any, float], error: BaseException | None) -> None:
            context, started = state
            elapsed = time.perf_counter() - started
            code = status_of(context, error)
            GRPC_HANDLED.labels(method, code).inc()
            GRPC_DURATION.labels(method).observe(elapsed)
            rid = structlog.contextvars.get_contextvars().get("request_id", "")
            access_log.write(
                rid, event="grpc", method=method, code=code, duration_ms=round(elapsed * 1e3, 3)
            )

        return _wrap(handler, lambda behavior: _around(behavior, enter, leave))
