"""A real OTLP/gRPC trace receiver for the tests: a grpc.aio server implementing the
collector's TraceService (opentelemetry-proto), keeping every span it is sent."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str  # 32 hex
    span_id: str  # 16 hex
    parent_id: str  # "" for a root
    kind: int
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...]  # (trace id, span id)
    status_code: int
    status_message: str


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@dataclass
class Receiver(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    spans: list[Span] = field(default_factory=list)
    server: Any = None
    port: int = 0
    exports: int = 0
    requests: list[Any] = field(default_factory=list)  # each ExportTraceServiceRequest

    async def Export(self, request: Any, context: Any) -> Any:
        self.exports += 1
        self.requests.append(request)
        for resource_spans in request.resource_spans:
            attrs = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            service = str(attrs.get("service.name", ""))
            for scope in resource_spans.scope_spans:
                for s in scope.spans:
                    self.spans.append(
                        Span(
                            service=service,
                            name=s.name,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex(),
                            kind=s.kind,
                            attributes={a.key: _value(a.value) for a in s.attributes},
                            links=tuple((x.trace_id.hex(), x.span_id.hex()) for x in s.links),
                            status_code=s.status.code,
                            status_message=s.status.message,
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse()

    async def start(self) -> Receiver:
        self.server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        return self

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(1.0)

    def in_trace(self, trace_id: str) -> list[Span]:
        return [s for s in self.spans if s.trace_id == trace_id]

    async def wait_for(self, check: Any, what: str, seconds: float = 15.0) -> None:
        """Until `check(self)` holds (the exporters send every ~100 ms in the tests)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if check(self):
                return
            await asyncio.sleep(0.05)
        seen = sorted({(s.service, s.name) for s in self.spans})
        raise AssertionError(f"not within {seconds}s: {what}; spans received: {seen}")
