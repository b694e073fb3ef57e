"""The service level objectives of every service, declared once next to lib/registry.py.

tools/deploy/slo.py turns them into Prometheus rules (observability/prometheus/rules/slo.yml:
the error ratio over every window, the multiwindow multi-burn-rate alerts, the error
budget left), which the service dashboard's SLO row reads. A service without an
entry in `SLOS` (a new one of `make new-service`) gets `ServiceSLO()`'s defaults.
docs/operations.md ("Setting and changing an SLO") says how to change one.
"""

from __future__ import annotations

from dataclasses import dataclass

from lib import registry

WINDOW = "30d"  # the SLO period: the error budget is spent over 30 days


@dataclass(frozen=True, slots=True)
class RouteClass:
    """A latency SLO: `target` of the requests whose method matches `methods` (a regular
    expression) answer within `threshold` seconds, a bucket bound of lib/metrics.py."""

    name: str
    methods: str
    threshold: float
    target: float = 0.99


READ = RouteClass("read", "GET|HEAD", 0.25)
WRITE = RouteClass("write", "POST|PUT|PATCH|DELETE", 1.0)


@dataclass(frozen=True, slots=True)
class ServiceSLO:
    """`availability`: the share of answers that are not 5xx. Every 5xx counts against it,
    the 503 with Retry-After of a dependency outage or a full pool too: the user did not
    get an answer, and the budget is what absorbs documented outages. A gRPC service: the
    share of calls not ending UNKNOWN, INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED, DATA_LOSS,
    and `latency` applies to every method. `websocket_delivery`: the share of WebSockets
    the server does not drop as too slow (their queued messages are lost to that client)."""

    availability: float = 0.999
    latency: tuple[RouteClass, ...] = (READ, WRITE)
    websocket_delivery: float | None = None


# the services whose SLOs differ from ServiceSLO()'s defaults; every other one has those
SLOS: dict[str, ServiceSLO] = {
    # the picture upload (5 MiB) is a write: 2.5 s for the slowest clients' uploads
    "users": ServiceSLO(latency=(READ, RouteClass("write", WRITE.methods, 2.5))),
    "chat": ServiceSLO(websocket_delivery=0.999),
    "points": ServiceSLO(latency=(RouteClass("call", ".*", 0.1),)),
}


def of(service: registry.Microservice) -> ServiceSLO:
    return SLOS.get(service.name, ServiceSLO())
