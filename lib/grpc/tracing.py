"""The gRPC server span: the caller's `traceparent` continued, the status code on it.

Named `package.Service/Method` (lib/tracing.py); first in the chain, so the request id and
access-log interceptors run inside it. Our services' unary calls only: health
checks and reflection (`/grpc.*`) are infrastructure, not requests worth a trace."""

from __future__ import annotations

from typing import Any

import grpc

from lib import tracing
from lib.grpc.interceptors import Behavior, _wrap, metadata_value


class TracingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler
        if details.method.startswith("/grpc."):  # grpc.health.v1, grpc.reflection
            return handler
        name = details.method.lstrip("/")
        parent = metadata_value(details.invocation_metadata, tracing.TRACEPARENT)

        def around(behavior: Behavior) -> Behavior:
            async def call(request: Any, context: Any) -> Any:
                span, token = tracing.start_server_span(name, parent, {"rpc.system": "grpc"})
                try:
                    result = await behavior(request, context)
                except BaseException as exc:
                    code = context.code()
                    failed = code.name if isinstance(code, grpc.StatusCode) else None
                    tracing.fail(span, failed or type(exc).__name__)
                    raise
                finally:
                    tracing.end_span(span, token)
                code = context.code()
                if isinstance(code, grpc.StatusCode) and code != grpc.StatusCode.OK:
                    tracing.fail(span, code.name)
                return result

            return call

        return _wrap(handler, around)
