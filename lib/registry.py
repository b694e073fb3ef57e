"""Every service once (ports, database, replicas): what settings and deploy files derive from.

The rest is derived from `MICROSERVICES`: the databases of tools/local/databases.py, NGINX's
upstream servers (tools/deploy/nginx.py), the documents of `make swag-gen` (tools/swag.py),
the profiling ports (lib/http/profiling.py), the Procfile (tools/deploy/procfile.py), a
local run's Prometheus (tools/deploy/prometheus.py), the entries `make new-service` adds to
`.env.example`, Compose and its Prometheus config, NGINX's templates (its upstream and
locations), its Kubernetes component (deploy/k8s/services/<name>/), and each service's
default port and database URL (lib/config.py). `make new-service name=X
db=postgresql|mysql [grpc=1]` adds an entry and a working service; `make remove-service name=X`
takes both out again (tools/new_service.py).

`built` says whether `services/<name>/` can run: the Procfile starts and `make swag-gen`
documents only built services, while NGINX routes `/api/<name>/` for every HTTP service
(one not built answers 503 problem+json, like a service that is down).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Engine = Literal["postgresql", "mysql"]
# the local servers of a development run; `<DB>_DATABASE_URL` points elsewhere
SERVERS: dict[Engine, str] = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432",
    "mysql": "mysql://root@127.0.0.1:3306",
}
LOCALHOST = "127.0.0.1"
# replica k of a service listens on its port + k * REPLICA_PORT_STEP (8102, 8202, ...), so
# at most MAX_REPLICAS on one host before a port meets another kind's (points' 9105)
REPLICA_PORT_STEP = 100
MAX_REPLICAS = 9


@dataclass(frozen=True, slots=True)
class Upload:
    """A gateway route that takes a body above NGINX's 1 MiB (the service checks its own,
    smaller limit): `path` is a regular expression of the path below `/api/<name>`."""

    path: str
    max_body: str  # an NGINX size: the service's limit plus the multipart overhead


@dataclass(frozen=True, slots=True)
class Microservice:
    """One process kind of this repository (`services/<name>/`); not the catalog's service,
    the offering a customer orders (docs/architecture.md, "Names")."""

    name: str
    index: int  # profiling port: 6060 + index*10 + worker (lib/http/profiling.py)
    port: int  # the first replica's HTTP port; a gRPC service's /health /ready /metrics
    database: str
    engine: Engine
    built: bool
    grpc_port: int | None = None
    # how many processes `make run`, Compose and Kubernetes start (`make run replicas=N`
    # overrides it for every HTTP service: `scaled`); NGINX balances over all of them
    replicas: int = 1
    # what its dashboard shows beyond requests and the pool, each series exported from
    # start-up (tests/e2e/test_metrics_from_startup.py): the dependencies it calls through
    # a circuit breaker (`circuit_breaker_state{dependency}`), and whether it relays an
    # outbox (`outbox_pending`)
    breakers: tuple[str, ...] = ()
    outbox: bool = False
    # at the gateway: WebSocket upgrades (long reads, least_conn across replicas), and
    # routes taking bodies above 1 MiB
    websocket: bool = False
    uploads: tuple[Upload, ...] = ()
    # a gRPC service's side-port paths the gateway routes at /api/<name><path>, GET only
    # (points: ADMIN's audit list); nothing else of it is routed
    side_routes: tuple[str, ...] = ()

    @property
    def http_ports(self) -> tuple[int, ...]:
        """One per replica: the port, then + REPLICA_PORT_STEP for each further one."""
        return tuple(self.port + k * REPLICA_PORT_STEP for k in range(self.replicas))

    @property
    def http_port(self) -> int:
        """The first replica's port: the service's default `<SVC>_PORT`."""
        return self.port

    @property
    def metrics_port(self) -> int:
        """Every service serves /metrics on its HTTP port (points: its side port)."""
        return self.http_port

    @property
    def behind_gateway(self) -> bool:
        """REST services are routed by NGINX at /api/<name>/; of a gRPC one, only its
        `side_routes`."""
        return self.grpc_port is None

    @property
    def env_prefix(self) -> str:
        return self.name.upper()

    @property
    def default_database_url(self) -> str:
        """The service's database on the local server: `<SVC>_DATABASE_URL`'s default."""
        return f"{SERVERS[self.engine]}/fixup_{self.database}"

    @property
    def local_url(self) -> str:
        """How a peer reaches it on one host: `<SVC>_URL`'s default."""
        return f"http://{LOCALHOST}:{self.http_port}"

    @property
    def local_grpc_addr(self) -> str:
        """`<SVC>_GRPC_ADDR`'s default (a gRPC service)."""
        return f"{LOCALHOST}:{self.grpc_port}"


MICROSERVICES: tuple[Microservice, ...] = (
    Microservice("departments", 1, 8101, "departments", "postgresql", built=True),
    Microservice(
        "users",
        2,
        8102,
        "users",
        "postgresql",
        built=True,
        breakers=("catalog", "chat", "departments", "orders", "points"),
        outbox=True,
        uploads=(Upload("/v1/users/[^/]+/picture", "6m"),),
    ),
    Microservice("catalog", 3, 8103, "catalog", "postgresql", built=True),
    Microservice(
        "orders",
        4,
        8104,
        "orders",
        "postgresql",
        built=True,
        breakers=("catalog", "points", "users"),
        outbox=True,
    ),
    # two replicas: WebSocket fan-out across processes goes through Redis
    Microservice(
        "chat",
        5,
        8105,
        "chat",
        "postgresql",
        built=True,
        breakers=("orders",),
        websocket=True,
        replicas=2,
    ),
    Microservice(
        "points",
        6,
        9105,
        "points",
        "mysql",
        built=True,
        grpc_port=50051,
        side_routes=("/v1/audit-events",),
    ),
    # `make new-service` adds its entry above this line
)
BY_NAME: dict[str, Microservice] = {service.name: service for service in MICROSERVICES}


def get(name: str) -> Microservice:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(BY_NAME)}") from None


def scaled(replicas: int | None) -> tuple[Microservice, ...]:
    """The registry with every HTTP service at `replicas` processes (None: as registered);
    a gRPC service stays at its own count (its clients hold one address)."""
    if replicas is None:
        return MICROSERVICES
    if not 1 <= replicas <= MAX_REPLICAS:
        raise ValueError(f"replicas={replicas}: expected 1..{MAX_REPLICAS}")
    return tuple(replace(s, replicas=replicas) if s.behind_gateway else s for s in MICROSERVICES)


def gateway_services() -> list[Microservice]:
    """The REST services NGINX routes at /api/<name>/ (built or not)."""
    return [service for service in MICROSERVICES if service.behind_gateway]


def routed_services() -> list[Microservice]:
    """Every service NGINX has an upstream for: the REST ones, and the gRPC ones with
    `side_routes`."""
    return [s for s in MICROSERVICES if s.behind_gateway or s.side_routes]


def built_services() -> list[Microservice]:
    return [service for service in MICROSERVICES if service.built]


def peer_addresses() -> dict[str, str]:
    """How a service reaches the others when each runs under its own name as host name
    (Compose, Kubernetes): `<SVC>_URL` for an HTTP service, `<SVC>_GRPC_ADDR` for gRPC,
    and `REVOCATION_RECORD_URL`, users' address every service asks while Redis is away."""
    addresses = {}
    for s in MICROSERVICES:
        if s.grpc_port is not None:
            addresses[f"{s.env_prefix}_GRPC_ADDR"] = f"{s.name}:{s.grpc_port}"
        else:
            addresses[f"{s.env_prefix}_URL"] = f"http://{s.name}:{s.http_port}"
    users = get("users")
    addresses["REVOCATION_RECORD_URL"] = f"http://{users.name}:{users.http_port}"
    return addresses
