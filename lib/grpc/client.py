"""A bounded pool of grpc.aio channels to one target, and typed unary calls through it.

One channel multiplexes many calls over one HTTP/2 connection; a few channels spread the
load over a few connections (and event-loop wake-ups) without a connection per call.
Every channel gets its own subchannel (`grpc.use_local_subchannel_pool`): otherwise gRPC
shares one connection between all channels to the same target and the pool is a pool
in name only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import grpc
import structlog

from lib import tracing
from lib.grpc.interceptors import REQUEST_ID_KEY

Reply = TypeVar("Reply")

DEFAULT_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)


class ChannelPool:
    """`size` channels to `target`, handed out round-robin; `close()` on shutdown."""

    def __init__(
        self, target: str, size: int = 4, *, options: Sequence[tuple[str, Any]] = DEFAULT_OPTIONS
    ) -> None:
        if size < 1:
            raise ValueError("pool size must be >= 1")
        self.target = target
        self.channels: tuple[Any, ...] = tuple(
            grpc.aio.insecure_channel(target, options=list(options)) for _ in range(size)
        )
        self._next = 0
        self.closed = False

    def __len__(self) -> int:
        return len(self.channels)

    def channel(self) -> Any:
        """The next channel, round-robin."""
        if self.closed:
            raise RuntimeError(f"channel pool to {self.target} is closed")
        index = self._next
        self._next = (index + 1) % len(self.channels)
        return self.channels[index]

    def unary(
        self,
        method: str,
        parse: Callable[[bytes], Reply],
        serialize: Callable[[Any], bytes] = bytes,
    ) -> UnaryMethod[Reply]:
        """A unary method: `pool.unary("/pkg.Svc/Method", Reply.parse)` for betterproto2
        messages (`bytes(message)` serialises them)."""
        return UnaryMethod(self, method, parse, serialize)

    async def close(self, grace: float | None = None) -> None:
        """Close every channel; with `grace`, running calls get that long to finish."""
        self.closed = True
        for channel in self.channels:
            await channel.close(grace)


def call_metadata(request_id: str | None = None) -> tuple[tuple[str, str], ...]:
    """`x-request-id` metadata: the given id, else the one bound into structlog's context."""
    rid = request_id or structlog.contextvars.get_contextvars().get("request_id")
    return ((REQUEST_ID_KEY, str(rid)),) if rid else ()


class UnaryMethod(Generic[Reply]):
    """A unary-unary method called through a pool; one cached multicallable per channel."""

    def __init__(
        self,
        pool: ChannelPool,
        method: str,
        parse: Callable[[bytes], Reply],
        serialize: Callable[[Any], bytes],
    ) -> None:
        self.pool = pool
        self.method = method
        self.name = method.lstrip("/")  # the client span's name: package.Service/Method
        self._callables: dict[int, Any] = {}
        self._parse = parse
        self._serialize = serialize

    async def __call__(
        self,
        request: Any,
        *,
        timeout: float,  # noqa: ASYNC109  (the gRPC deadline, sent to the server)
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Reply:
        """One call with a deadline of `timeout` seconds; raises grpc.aio.AioRpcError."""
        channel = self.pool.channel()
        call = self._callables.get(id(channel))
        if call is None:
            call = channel.unary_unary(
                self.method, request_serializer=self._serialize, response_deserializer=self._parse
            )
            self._callables[id(channel)] = call
        if not tracing.ENABLED:
            reply: Reply = await call(request, timeout=timeout, metadata=tuple(metadata))
            return reply
        return await self._traced(call, request, timeout, metadata)

    async def _traced(
        self,
        call: Any,
        request: Any,
        timeout: float,  # noqa: ASYNC109  (the gRPC deadline, sent to the server)
        metadata: Sequence[tuple[str, str]],
    ) -> Reply:
        """The call in a client span (when the caller is sampled), `traceparent` sent."""
        span = tracing.start_child(self.name) if tracing.recording() else None
        parent = tracing.current_traceparent(span)
        sent = (*metadata, (tracing.TRACEPARENT, parent)) if parent else tuple(metadata)
        try:
            reply: Reply = await call(request, timeout=timeout, metadata=sent)
        except grpc.aio.AioRpcError as exc:
            if span is not None:
                tracing.fail(span, exc.code().name)
            raise
        finally:
            if span is not None:
                span.end()
        return reply
