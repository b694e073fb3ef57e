"""The NetworkPolicies of the Kubernetes base (deploy/k8s/base/network-policies.yaml, by
tools/deploy/k8s.py), from lib/registry.py: every pod of the namespace denied all traffic, then one
allow per real edge:

- DNS: every pod -> the cluster's DNS (kube-system, `k8s-app: kube-dns`), port 53;
- the gateway (Envoy Gateway's Envoy pods of our Gateway, its namespace) -> each service behind it
  and the account pages, on their HTTP port;
- Prometheus (namespace `monitoring`, `app.kubernetes.io/name: prometheus`) -> each
  service's /metrics port and Alertmanager;
- each service -> the services it calls through a circuit breaker (`breakers`, and users'
  revocation record for every other service), on their gRPC or HTTP port (an egress on
  the caller, an ingress on the callee); that same edge to users' HTTP port carries its
  JWK Set (JWKS_URL, ADR 0032), which every other service fetches to verify tokens;
- each service -> its database's port and Redis's; users -> SMTP and HTTPS (S3) when its
  settings have them; the migrations Job -> every database's port. These peers are
  managed servers outside the cluster: the rules name the port, not an address (an
  overlay narrows them with an `ipBlock` of the database's network);
- the backup CronJob (tools/deploy/k8s_backup.py) -> pgBackRest's TLS server on the PostgreSQL
  host and HTTPS (the S3 repository); nothing reaches it.

Alertmanager's receivers carry no integration yet (tools/deploy/alertmanager.py), and tracing is
off unless OTEL_EXPORTER_OTLP_ENDPOINT is set: whoever adds either adds its egress here.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic.fields import FieldInfo

from lib import registry
from lib.config import ServiceSettings
from tools.deploy.k8s_alertmanager import NAME as ALERTMANAGER
from tools.deploy.k8s_alertmanager import PORT as ALERTMANAGER_PORT
from tools.deploy.k8s_backup import NAME as BACKUP
from tools.deploy.k8s_backup import TLS_SERVER_PORT as BACKUP_TLS_PORT
from tools.deploy.k8s_gateway import PROXY_LABELS, PROXY_NAMESPACE
from tools.deploy.k8s_objects import labels, metadata
from tools.deploy.k8s_pages import PAGES, PAGES_PORT

ENGINE_PORTS = {"postgresql": 5432, "mysql": 3306}
REDIS_PORT = 6379
SMTP_PORTS = (25, 465, 587)  # SMTP_PORT's default, implicit TLS, submission
HTTPS_PORT = 443
MIGRATE = "fixup-migrate"  # the Job's pods (tools/deploy/k8s.py)
# the revocation record's keeper (REVOCATION_RECORD_URL) and the JWK Set's (JWKS_URL)
RECORD = "users"


def namespace_pods(namespace: str, pod_labels: dict[str, str]) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "podSelector": {"matchLabels": pod_labels},
    }


GATEWAY = namespace_pods(PROXY_NAMESPACE, PROXY_LABELS)
PROMETHEUS = namespace_pods("monitoring", {"app.kubernetes.io/name": "prometheus"})
DNS = namespace_pods("kube-system", {"k8s-app": "kube-dns"})


def tcp(*numbers: int | str) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": n} for n in numbers]


def settings_fields(service: registry.Microservice) -> dict[str, FieldInfo]:
    """The fields of the service's own settings class (services/<name>/settings.py)."""
    module = importlib.import_module(f"services.{service.name}.settings")
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, ServiceSettings)
            and value.registry_name == service.name
        ):
            return dict(value.model_fields)
    raise LookupError(f"services/{service.name}/settings.py: no settings class of {service.name}")


def serving_port(service: registry.Microservice) -> int:
    """Where a caller reaches it: gRPC when it has it, else HTTP."""
    return service.grpc_port if service.grpc_port is not None else service.http_port


def policy(name: str, pod: dict[str, str], ingress: list[Any], egress: list[Any]) -> Any:
    selector = {"matchLabels": pod} if pod else {}  # {}: every pod of the namespace
    spec: dict[str, Any] = {"podSelector": selector, "policyTypes": []}
    if ingress:
        spec["policyTypes"].append("Ingress")
        spec["ingress"] = ingress
    if egress:
        spec["policyTypes"].append("Egress")
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name),
        "spec": spec,
    }


def callees(service: registry.Microservice) -> tuple[str, ...]:
    """What `service` calls: its `breakers`, and users (every other service asks its
    revocation record while Redis is away, ADR 0010, and fetches its JWK Set, ADR 0032)."""
    record = (RECORD,) if service.name != RECORD and RECORD not in service.breakers else ()
    return service.breakers + record


def service_policy(service: registry.Microservice, built: list[registry.Microservice]) -> Any:
    ingress: list[Any] = []
    if service.behind_gateway:
        ingress.append({"from": [GATEWAY], "ports": tcp(service.http_port)})
    ingress.append({"from": [PROMETHEUS], "ports": tcp(service.metrics_port)})
    callers = [c for c in built if service.name in callees(c)]
    if callers:
        sources = [{"podSelector": {"matchLabels": labels(c.name)}} for c in callers]
        ingress.append({"from": sources, "ports": tcp(serving_port(service))})
    egress: list[Any] = [
        {"to": [{"podSelector": {"matchLabels": labels(callee)}}], "ports": tcp(port)}
        for callee, port in ((n, serving_port(registry.get(n))) for n in callees(service))
    ]
    egress.append({"ports": tcp(ENGINE_PORTS[service.engine])})
    egress.append({"ports": tcp(REDIS_PORT)})
    fields = settings_fields(service)
    if "smtp_host" in fields:
        egress.append({"ports": tcp(*SMTP_PORTS)})
    if "s3_endpoint_url" in fields:
        egress.append({"ports": tcp(HTTPS_PORT)})
    return policy(service.name, labels(service.name), ingress, egress)


def policies(built: list[registry.Microservice]) -> list[Any]:
    everything: dict[str, Any] = {}
    deny = policy("default-deny", everything, [], [])
    deny["spec"]["policyTypes"] = ["Ingress", "Egress"]
    dns = policy("allow-dns", everything, [], [{"to": [DNS], "ports": dns_ports()}])
    pages = policy(PAGES, labels(PAGES), [{"from": [GATEWAY], "ports": tcp(PAGES_PORT)}], [])
    alertmanager = policy(
        ALERTMANAGER,
        labels(ALERTMANAGER),
        [{"from": [PROMETHEUS], "ports": tcp(ALERTMANAGER_PORT)}],
        [],
    )
    engines = sorted({ENGINE_PORTS[s.engine] for s in registry.MICROSERVICES})
    migrate = policy(MIGRATE, labels(MIGRATE), [], [{"ports": tcp(*engines)}])
    backup = policy(BACKUP, labels(BACKUP), [], [{"ports": tcp(BACKUP_TLS_PORT, HTTPS_PORT)}])
    services = [service_policy(s, built) for s in built]
    return [deny, dns, *services, pages, alertmanager, migrate, backup]


def dns_ports() -> list[dict[str, Any]]:
    return [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
