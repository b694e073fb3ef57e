"""Alertmanager in the Kubernetes base (deploy/k8s/base/alertmanager.yaml, by tools/deploy/k8s.py):
its config from tools/deploy/alertmanager.py as a ConfigMap, a Deployment of one (silences and
notification state live in its emptyDir: one replica, no gossip) and a Service, at
`alertmanager:9093` for the cluster's Prometheus (which scrapes the pods' annotations)."""

from __future__ import annotations

from typing import Any

from tools.deploy import alertmanager, images
from tools.deploy.k8s_objects import (
    PART_OF,
    ROLLING_UPDATE,
    container_security,
    labels,
    metadata,
    pod_security,
    pre_stop,
)

NAME = "alertmanager"
IMAGE = images.ALERTMANAGER  # one pin with Compose's
PORT = 9093
CONF_DIR = "/etc/alertmanager"
UID = 65534  # the image's `nobody`


def config_map() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(NAME),
        "data": {"alertmanager.yml": alertmanager.CONFIG_FILE.read_text()},
    }


def deployment() -> dict[str, Any]:
    def probe(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": 10}

    container = {
        "name": NAME,
        "image": IMAGE,
        "args": [
            f"--config.file={CONF_DIR}/alertmanager.yml",
            "--storage.path=/alertmanager",
            f"--web.listen-address=:{PORT}",
            "--cluster.listen-address=",
        ],
        "ports": [{"name": "http", "containerPort": PORT}],
        "livenessProbe": probe("/-/healthy"),
        "readinessProbe": probe("/-/ready"),
        "lifecycle": pre_stop(),
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"cpu": "200m", "memory": "128Mi"},
        },
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONF_DIR, "readOnly": True},
            {"name": "data", "mountPath": "/alertmanager"},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(NAME),
        "spec": {
            "replicas": 1,
            "strategy": ROLLING_UPDATE,
            "selector": {"matchLabels": labels(NAME)},
            "template": {
                "metadata": {"labels": {**labels(NAME), **PART_OF}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(UID),
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": NAME}},
                        {"name": "data", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(NAME),
        "spec": {
            "selector": labels(NAME),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http"}],
        },
    }


def objects() -> list[dict[str, Any]]:
    return [config_map(), deployment(), service()]


HTTPS_PORT = 443  # PagerDuty's Events API
SECRET = "fixup-alertmanager"  # page-routing-key, ticket-routing-key (deploy/k8s/README.md)


def production_patch() -> list[dict[str, Any]]:
    """The prod overlay's patch: the ConfigMap with `alertmanager.PRODUCTION_RECEIVERS`, the
    Secret holding their keys mounted where that config reads them, and the HTTPS egress
    their notifications need (the base's NetworkPolicy allows none)."""
    production = alertmanager.config(alertmanager.PRODUCTION_RECEIVERS)
    secrets_mount = {"name": "secrets", "mountPath": alertmanager.SECRETS_DIR, "readOnly": True}
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": NAME},
            "data": {"alertmanager.yml": alertmanager.render(production)},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": NAME},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": NAME, "volumeMounts": [secrets_mount]}],
                        "volumes": [{"name": "secrets", "secret": {"secretName": SECRET}}],
                    }
                }
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": NAME},
            "spec": {
                "policyTypes": ["Ingress", "Egress"],
                "egress": [{"ports": [{"protocol": "TCP", "port": HTTPS_PORT}]}],
            },
        },
    ]
