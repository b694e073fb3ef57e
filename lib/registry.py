"""Every service of Fixup in one table: ports, database, replicas, profiling index.

The rest is derived from `SERVICES`: the databases of tools/databases.py, NGINX's
upstreams (tools/nginx.py), the documents of `make swag-gen` (tools/swag.py), the
profiling ports (lib/profiling.py) and the Procfile (tools/procfile.py renders it).

`built` says whether `services/<name>/` can run yet. Planned services (catalog, orders,
chat) are listed with their ports and databases so that migrations, the seed and the
gateway already know them: NGINX routes `/api/<name>/` for every HTTP service (a planned
one answers 503 problem+json, like a service that is down), while the Procfile starts and
`make swag-gen` documents only the services that are built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Engine = Literal["postgresql", "mysql"]


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    index: int  # profiling port: 6060 + index*10 + worker (lib/profiling.py)
    http_ports: tuple[int, ...]  # one per replica; a gRPC service's /health /ready /metrics
    database: str
    engine: Engine
    built: bool
    grpc_port: int | None = None
    # what its dashboard shows beyond requests and the pool, each series exported from
    # start-up (tests/e2e/test_metrics_from_startup.py): the dependencies it calls through
    # a circuit breaker (`circuit_breaker_state{dependency}`), and whether it relays an
    # outbox (`outbox_pending`)
    breakers: tuple[str, ...] = ()
    outbox: bool = False

    @property
    def http_port(self) -> int:
        """The first replica's port: the service's default `<SVC>_PORT`."""
        return self.http_ports[0]

    @property
    def metrics_port(self) -> int:
        """Every service serves /metrics on its HTTP port (points: its side port)."""
        return self.http_port

    @property
    def replicas(self) -> int:
        return len(self.http_ports)

    @property
    def behind_gateway(self) -> bool:
        """REST services are routed by NGINX at /api/<name>/; gRPC ones are not."""
        return self.grpc_port is None

    @property
    def env_prefix(self) -> str:
        return self.name.upper()


SERVICES: tuple[Service, ...] = (
    Service("departments", 1, (8101,), "departments", "postgresql", built=True),
    Service(
        "users",
        2,
        (8102,),
        "users",
        "postgresql",
        built=True,
        breakers=("departments", "points"),
        outbox=True,
    ),
    Service("catalog", 3, (8103,), "catalog", "postgresql", built=True),
    Service(
        "orders",
        4,
        (8104,),
        "orders",
        "postgresql",
        built=True,
        breakers=("catalog", "points", "users"),
        outbox=True,
    ),
    # two replicas: WebSocket fan-out across processes goes through Redis
    Service("chat", 5, (8105, 8106), "chat", "postgresql", built=True, breakers=("orders",)),
    Service("points", 6, (9105,), "points", "mysql", built=True, grpc_port=50051),
)
BY_NAME: dict[str, Service] = {service.name: service for service in SERVICES}


def get(name: str) -> Service:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(BY_NAME)}") from None


def gateway_services() -> list[Service]:
    """The services NGINX routes (planned ones included)."""
    return [service for service in SERVICES if service.behind_gateway]


def built_services() -> list[Service]:
    return [service for service in SERVICES if service.built]


def peer_addresses() -> dict[str, str]:
    """How a service reaches the others when each runs under its own name as host name
    (Compose, Kubernetes): `<SVC>_URL` for an HTTP service, `<SVC>_GRPC_ADDR` for gRPC."""
    addresses = {}
    for s in SERVICES:
        if s.grpc_port is not None:
            addresses[f"{s.env_prefix}_GRPC_ADDR"] = f"{s.name}:{s.grpc_port}"
        else:
            addresses[f"{s.env_prefix}_URL"] = f"http://{s.name}:{s.http_port}"
    return addresses
