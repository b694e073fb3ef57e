"""Serve betterproto2-generated services on grpc.aio.

betterproto2 generates grpclib stubs only. Its service base class has `__mapping__()`:
`{"/pkg.Service/Method": Handler(func, cardinality, request_type, reply_type)}`, where
`func(stream)` reads the request with `stream.recv_message()` and answers with
`stream.send_message()`. The adapter turns every entry into a grpc.aio method handler:
a small `_Stream` stands in for grpclib's stream, (de)serialisation goes through
`lib.grpc.codec` (upb where exact, else betterproto2's own bytes), and a
`grpclib.GRPCError` raised by the implementation becomes the same gRPC status. No
per-method glue: a new rpc in the .proto needs only `make proto` and the implementing
method.

`serve()` adds the interceptors (request id, then logging + metrics), standard health
checking and reflection; `GrpcServer.stop()` drains gracefully.
"""

from __future__ import annotations

import inspect
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import grpclib
import grpclib.const
import structlog
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from lib.grpc.codec import codec
from lib.logging import access_log, get_logger
from lib.metrics import GRPC_DURATION, GRPC_HANDLED

log = get_logger("lib.grpc")

REQUEST_ID_KEY = "x-request-id"
REQUEST_ID_FORMAT = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # as lib.http's middleware

Behavior = Callable[..., Any]
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
    """Run a generated handler; map grpclib errors to grpc.aio, hide anything unexpected."""
    try:
        await func(stream)
    except grpclib.GRPCError as exc:
        await context.abort(grpc.StatusCode[exc.status.name], exc.message or exc.status.name)
    except Exception:
        log.exception("grpc_handler_failed")
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")


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


# ---------------------------------------------------------------- interceptors


def _wrap(handler: Any, around: Callable[[Behavior], Behavior]) -> Any:
    """The same RpcMethodHandler with its behaviour wrapped (it is a namedtuple)."""
    if handler is None:
        return None
    field = ("stream_" if handler.request_streaming else "unary_") + (
        "stream" if handler.response_streaming else "unary"
    )
    return handler._replace(**{field: around(getattr(handler, field))})


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


def incoming_request_id(metadata: Iterable[tuple[str, Any]] | None) -> str:
    """The caller's x-request-id when it is well-formed, else a new UUID (API.md)."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY:
            if isinstance(value, str) and REQUEST_ID_FORMAT.match(value):
                return value
            break
    return str(uuid.uuid4())


class RequestIdInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Keep or replace `x-request-id`, bind it into structlog's context for every log line
    of the call, and echo it in the trailing metadata (set, not sent: an explicit
    initial-metadata send costs an extra write per call)."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        rid = incoming_request_id(details.invocation_metadata)

        def around(behavior: Behavior) -> Behavior:
            if inspect.isasyncgenfunction(behavior):

                async def generate(request: Any, context: Any) -> AsyncIterator[Any]:
                    with structlog.contextvars.bound_contextvars(request_id=rid):
                        context.set_trailing_metadata(((REQUEST_ID_KEY, rid),))
                        async for item in behavior(request, context):
                            yield item

                return generate

            async def call(request: Any, context: Any) -> Any:
                with structlog.contextvars.bound_contextvars(request_id=rid):
                    context.set_trailing_metadata(((REQUEST_ID_KEY, rid),))
                    return await behavior(request, context)

            return call

        return _wrap(handler, around)


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


# ---------------------------------------------------------------- the server


def _add_file(pool: descriptor_pool.DescriptorPool, file: FileDescriptor, seen: set[str]) -> None:
    if file.name in seen:
        return
    seen.add(file.name)
    for dependency in file.dependencies:
        _add_file(pool, dependency, seen)
    pool.AddSerializedFile(file.serialized_pb)


def reflection_pool(services: Sequence[Servable]) -> descriptor_pool.DescriptorPool:
    """One descriptor pool with our services' files (betterproto2 keeps them in a pool of
    its own) plus health and reflection, so reflection can describe every listed service."""
    pool = descriptor_pool.DescriptorPool()
    seen: set[str] = set()
    files = [health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR]
    for service in services:
        for entry in service.__mapping__().values():
            files.append(entry.request_type.DESCRIPTOR.file)
    for file in files:
        _add_file(pool, file, seen)
    return pool


@dataclass
class GrpcServer:
    server: Any  # grpc.aio.Server
    health: health.aio.HealthServicer
    port: int

    async def stop(self, grace: float) -> None:
        """NOT_SERVING on the health service, refuse new calls, give running calls up to
        `grace` seconds, then cancel them."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def serve(
    services: Sequence[Servable],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    interceptors: Sequence[Any] | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> GrpcServer:
    """Start a grpc.aio server with `services`, health and reflection; port 0 picks one."""
    chain = [RequestIdInterceptor(), AccessInterceptor()] if interceptors is None else interceptors
    server = grpc.aio.server(interceptors=list(chain), options=list(options))
    names: list[str] = []
    for service in services:
        server.add_generic_rpc_handlers(generic_handlers(service))
        names += service_names(service)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME],
        server,
        pool=reflection_pool(services),
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot bind gRPC port {host}:{port}")
    await server.start()
    serving = health_pb2.HealthCheckResponse.SERVING
    for name in ["", *names]:
        await health_servicer.set(name, serving)
    return GrpcServer(server, health_servicer, bound)
