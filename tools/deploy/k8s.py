"""The Kubernetes kustomize base from lib/registry.py: `python -m tools.deploy.k8s [check]`.

Writes deploy/k8s/base/: per built service a Deployment (/health liveness, /ready
readiness, resources), a Service, a PodDisruptionBudget and an HPA; the ConfigMap the
pods read (the Secret `fixup-secrets` is referenced, never written: deploy/k8s/README.md);
the edge on the Gateway API (tools/deploy/k8s_gateway.py: the Gateway, an HTTPRoute per service
with /api/<svc>/ stripped like NGINX, Envoy Gateway's policies); the migrations Job.

Also the account pages (tools/deploy/k8s_pages.py), Alertmanager (tools/deploy/k8s_alertmanager.py),
the backup CronJob (tools/deploy/k8s_backup.py) and the GatewayClass (deploy/k8s/envoy-gateway/).

The overlays (dev, prod) are hand-written. `check` (CI) fails when a committed file is stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from lib import registry
from lib.config import ServiceSettings
from tools.deploy import k8s_alertmanager, k8s_backup, k8s_gateway, k8s_gateway_class, k8s_network
from tools.deploy.generated import ROOT, write_or_check
from tools.deploy.k8s_objects import (
    HEADER,
    PART_OF,
    PRESTOP_SECONDS,
    ROLLING_UPDATE,
    container_security,
    dump,
    labels,
    metadata,
    pod_security,
    pre_stop,
)
from tools.deploy.k8s_pages import (
    PAGES_RENDERED,
    pages_deployment,
    pages_disruption_budget,
    pages_files,
    pages_route,
    pages_service,
)

BASE = ROOT / "deploy" / "k8s" / "base"
# the one generated file of the hand-written prod overlay: its Alertmanager receivers
PROD_RECEIVERS = ROOT / "deploy" / "k8s" / "overlays" / "prod" / "alertmanager-receivers.yaml"
IMAGE = "fixup"  # the overlays set the registry and tag (kustomize `images:`)
CONFIG = "fixup-config"
SECRETS = "fixup-secrets"
SECRETS_PATH = "/run/secrets/fixup"  # the Secret's files, one a key (SECRETS_DIR)
# users signs from its keyring (ADR 0046), the Secret `fixup-jwt-keys` (`keyring.json`,
# written by `make rotate secret=jwt`) mounted whole
# (no subPath: the kubelet refreshes it, users reads it again every
# JWT_KEYS_RELOAD_INTERVAL, a rotation needs no restart); every other service verifies
# through users' JWK Set at its Service address (JWKS_URL), not through the gateway
JWT_KEYS = "fixup-jwt-keys"
JWT_KEYS_PATH = "/run/keys/jwt"
RUN_AS = 10001  # the Dockerfile's user
APP_DIR = "/app"  # the Dockerfile's WORKDIR
# the drain bound: lib/http/server.py drains in-flight requests for up to SHUTDOWN_TIMEOUT
# (lib/config.py's default; the ConfigMap sets the same value)
SHUTDOWN_TIMEOUT = int(ServiceSettings.model_fields["shutdown_timeout"].default)
# the kubelet's grace covers preStop + drain; past it SIGKILL: a margin above both
GRACE_SECONDS = PRESTOP_SECONDS + SHUTDOWN_TIMEOUT + 5


def writable_dirs(service: registry.Microservice) -> dict[str, str]:
    """volume name -> path: the read-only root filesystem's writable places. /tmp (the
    runner's multi-worker metrics directory); a service storing files locally (users'
    STORAGE_DIR when S3 is not configured) its storage directory."""
    out = {"tmp": "/tmp"}
    storage = k8s_network.settings_fields(service).get("storage_dir")
    if storage is not None:
        out["storage"] = f"{APP_DIR}/{storage.default}"
    return out


def empty_dir(name: str) -> dict[str, Any]:
    return {"name": name, "emptyDir": {"sizeLimit": "256Mi"}}


def env_from() -> list[dict[str, Any]]:
    """The ConfigMap as variables; the Secret is never one (`secrets_volume`)."""
    return [{"configMapRef": {"name": CONFIG}}]


def secrets_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """The Secret as files (its volume, its read-only mount at SECRETS_PATH), which the
    settings read through SECRETS_DIR (lib/config.py; ADR 0036): a Secret update reaches
    the mounted files within the kubelet's sync period, and a process reads them at start,
    so `kubectl rollout restart` brings it into service (docs/operations.md)."""
    volume = {"name": "secrets", "secret": {"secretName": SECRETS}}  # read by the pod uid
    return volume, {"name": "secrets", "mountPath": SECRETS_PATH, "readOnly": True}


def jwt_keys_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """users' key directory: the Secret `JWT_KEYS`, read-only at JWT_KEYS_PATH."""
    volume = {"name": "jwt-keys", "secret": {"secretName": JWT_KEYS}}
    return volume, {"name": "jwt-keys", "mountPath": JWT_KEYS_PATH, "readOnly": True}


def jwks_url() -> str:
    users = registry.get("users")
    return f"http://{users.name}:{users.http_port}/.well-known/jwks.json"


def probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def ports(service: registry.Microservice) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"name": "http", "containerPort": service.http_port}]
    if service.grpc_port is not None:
        out.append({"name": "grpc", "containerPort": service.grpc_port})
    return out


def deployment(service: registry.Microservice) -> dict[str, Any]:
    env = [
        {"name": "HOST", "value": "0.0.0.0"},
        {"name": f"{service.env_prefix}_PORT", "value": str(service.http_port)},
    ]
    if service.grpc_port is not None:
        env.append({"name": f"{service.env_prefix}_GRPC_PORT", "value": str(service.grpc_port)})
    signs = service.name == "users"
    if signs:  # over the ConfigMap's JWKS_URL: users signs and verifies from its directory
        env.append({"name": "JWT_KEYS_DIR", "value": JWT_KEYS_PATH})
    writable = writable_dirs(service)
    container = {
        "name": service.name,
        "image": IMAGE,
        "command": ["python", "-m", f"services.{service.name}"],
        "ports": ports(service),
        "env": env,
        "envFrom": env_from(),
        "livenessProbe": probe("/health", 10, 3),
        "readinessProbe": probe("/ready", 5, 2),
        "startupProbe": probe("/health", 2, 30),
        "lifecycle": pre_stop(),
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "256Mi"},
        },
        "securityContext": container_security(),
        "volumeMounts": [
            *({"name": n, "mountPath": path} for n, path in writable.items()),
            secrets_volume()[1],
            *([jwt_keys_volume()[1]] if signs else []),
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(service.name),
        "spec": {
            "replicas": service.replicas,
            "strategy": ROLLING_UPDATE,
            "selector": {"matchLabels": labels(service.name)},
            "template": {
                "metadata": {
                    "labels": {**labels(service.name), **PART_OF},
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(service.metrics_port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "terminationGracePeriodSeconds": GRACE_SECONDS,
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(RUN_AS),
                    "containers": [container],
                    "volumes": [
                        *(empty_dir(n) for n in writable),
                        secrets_volume()[0],
                        *([jwt_keys_volume()[0]] if signs else []),
                    ],
                },
            },
        },
    }


def k8s_service(service: registry.Microservice) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(service.name),
        "spec": {
            "selector": labels(service.name),
            "ports": [
                {"name": p["name"], "port": p["containerPort"], "targetPort": p["name"]}
                for p in ports(service)
            ],
        },
    }


def disruption_budget(service: registry.Microservice) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(service.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels(service.name)}},
    }


def autoscaler(service: registry.Microservice) -> dict[str, Any]:
    cpu = {"type": "Utilization", "averageUtilization": 70}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(service.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service.name},
            "minReplicas": service.replicas,
            "maxReplicas": service.replicas * 4,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": cpu}}],
        },
    }


def config_map() -> dict[str, Any]:
    """Settings that are not secret; the DSNs (with passwords) live in the Secret."""
    data = {
        "LOG_LEVEL": "INFO",
        "WORKERS": "1",
        "SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
        "SECRETS_DIR": SECRETS_PATH,
        "JWKS_URL": jwks_url(),
    }
    data.update(registry.peer_addresses())
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(CONFIG), "data": data}


def migrations_job() -> dict[str, Any]:
    """Every database's pending migrations (creating a missing database), before a rollout."""
    steps = " && ".join(
        f"python -m tools.migrations.migrate up {s.database}" for s in registry.MICROSERVICES
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata("fixup-migrate"),
        "spec": {
            "backoffLimit": 3,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": {**labels("fixup-migrate"), **PART_OF}},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(RUN_AS),
                    "containers": [
                        {
                            "name": "migrate",
                            "image": IMAGE,
                            "command": ["sh", "-c", steps],
                            "envFrom": env_from(),
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": "1", "memory": "256Mi"},
                            },
                            "securityContext": container_security(),
                            "volumeMounts": [
                                {"name": "tmp", "mountPath": "/tmp"},
                                secrets_volume()[1],
                            ],
                        }
                    ],
                    "volumes": [empty_dir("tmp"), secrets_volume()[0]],
                },
            },
        },
    }


def files() -> dict[str, str]:
    built = registry.built_services()
    out = {
        f"{s.name}.yaml": dump(deployment(s), k8s_service(s), disruption_budget(s), autoscaler(s))
        for s in built
    }
    out["config.yaml"] = dump(config_map())
    out["gateway.yaml"] = dump(*k8s_gateway.objects(built))
    out["migrate-job.yaml"] = dump(migrations_job())
    out["network-policies.yaml"] = dump(*k8s_network.policies(built))
    out["alertmanager.yaml"] = dump(*k8s_alertmanager.objects())
    out["backup.yaml"] = dump(*k8s_backup.objects(IMAGE, RUN_AS))
    out["pages.yaml"] = dump(
        pages_deployment(), pages_service(), pages_disruption_budget(), *pages_route()
    )
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "labels": [{"pairs": PART_OF}],
        # nginx/: the account pages' ConfigMaps (kustomize reads files below it only)
        "resources": [*sorted(out), "../../../nginx"],
    }
    out["kustomization.yaml"] = HEADER + yaml.safe_dump(kustomization, sort_keys=False)
    return out


def all_files() -> dict[Path, str]:
    """Every file this module writes: the base, nginx/kustomization.yaml + nginx/k8s/, and
    deploy/k8s/envoy-gateway/, the prod overlay's Alertmanager receivers."""
    out = {BASE / name: text for name, text in files().items()}
    out.update(pages_files())
    out.update(k8s_gateway_class.gateway_class_files())
    out[PROD_RECEIVERS] = dump(*k8s_alertmanager.production_patch())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy.k8s", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["write", "check"], default="write")
    args = parser.parse_args(argv)
    rendered = all_files()
    owned = [*BASE.glob("*.yaml"), *PAGES_RENDERED.rglob("*.conf")]
    stale_extra = [p for p in owned if p not in rendered]
    for path in stale_extra:  # a service no longer built, a template no longer included
        if args.command == "check":
            print(f"stale generated file: {path.relative_to(ROOT)}", file=sys.stderr)
            return 1
        path.unlink()
    return write_or_check(rendered, args.command == "check", "python -m tools.deploy.k8s")


if __name__ == "__main__":
    sys.exit(main())
