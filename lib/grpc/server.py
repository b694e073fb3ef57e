"""The gRPC server's lifecycle: start with health and reflection, stop by draining.

`serve()` adds the generated services through `lib.grpc.adapter` and the interceptors of
`lib.grpc.interceptors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from lib import tracing
from lib.grpc.adapter import Servable, generic_handlers, service_names
from lib.grpc.interceptors import AccessInterceptor, RequestIdInterceptor
from lib.metrics import start_grpc_series


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
    if interceptors is None:
        chain: list[Any] = [RequestIdInterceptor(), AccessInterceptor()]
        if tracing.ENABLED:  # first: the other interceptors' log lines carry its ids
            from lib.grpc.tracing import TracingInterceptor

            chain.insert(0, TracingInterceptor())
    else:
        chain = list(interceptors)
    server = grpc.aio.server(interceptors=list(chain), options=list(options))
    names: list[str] = []
    for service in services:
        server.add_generic_rpc_handlers(generic_handlers(service))
        names += service_names(service)
        start_grpc_series(service.__mapping__())
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
