"""TLS ends at the Kubernetes Gateway (ADR 0041, deploy/k8s/base/gateway.yaml): an HTTPS
listener with its certificate's Secret, cert-manager's issuer on prod's Gateway, plain HTTP
only redirected (301 to https), every other route on the HTTPS listener alone, HSTS."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.deploy.deploy_scan import OVERLAYS

GATEWAY = "fixup"
# the certificate and key (type kubernetes.io/tls) in the Gateway's namespace, written by
# cert-manager through the ClusterIssuer the prod overlay's Gateway annotation names
TLS_SECRET = "fixup-tls"
CLUSTER_ISSUER = "fixup-issuer"
CLUSTER_ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"


def render(overlay: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["kubectl", "kustomize", str(OVERLAYS / overlay)], capture_output=True, text=True
    )
    assert done.returncode == 0, f"kubectl kustomize (tools/packages.py): {done.stderr}"
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_plain_http_only_redirects_to_https(overlay: str) -> None:
    docs = render(overlay)
    listeners = {x["name"]: x for x in named(docs, "Gateway", GATEWAY)["spec"]["listeners"]}
    assert set(listeners) == {"http", "https"}
    https = listeners["https"]
    assert (https["protocol"], https["port"]) == ("HTTPS", 443)
    assert https["tls"]["mode"] == "Terminate"
    assert https["tls"]["certificateRefs"] == [{"kind": "Secret", "name": TLS_SECRET}]
    assert (listeners["http"]["protocol"], listeners["http"]["port"]) == ("HTTP", 80)
    routes = [d for d in docs if d["kind"] == "HTTPRoute"]
    on_http = [
        r for r in routes if any(p.get("sectionName") != "https" for p in r["spec"]["parentRefs"])
    ]
    assert [r["metadata"]["name"] for r in on_http] == ["fixup-https-redirect"]
    (redirect,) = on_http
    assert redirect["spec"]["parentRefs"] == [{"name": GATEWAY, "sectionName": "http"}]
    (rule,) = redirect["spec"]["rules"]
    assert "backendRefs" not in rule
    assert rule["filters"] == [
        {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}
    ]
    assert len(routes) > 5  # the services' routes and the pages', all on https


def test_every_response_carries_hsts_and_tls_is_12_at_least() -> None:
    clients = named(render("prod"), "ClientTrafficPolicy", "fixup-clients")["spec"]
    (header,) = clients["headers"]["lateResponseHeaders"]["set"]
    assert header["name"] == "Strict-Transport-Security"
    assert int(header["value"].removeprefix("max-age=")) >= 180 * 86400
    assert clients["tls"]["minVersion"] in ("1.2", "1.3")


def test_prod_asks_cert_manager_for_its_hosts_certificate() -> None:
    gateway = named(render("prod"), "Gateway", GATEWAY)
    annotations = gateway["metadata"]["annotations"]
    assert annotations[CLUSTER_ISSUER_ANNOTATION] == CLUSTER_ISSUER
    # cert-manager makes a certificate for a listener with a hostname and a Secret ref
    hosts = {x["name"]: x.get("hostname") for x in gateway["spec"]["listeners"]}
    assert hosts == {"http": "fixup.example.com", "https": "fixup.example.com"}


def test_the_issuer_and_the_secret_are_documented() -> None:
    readme = (Path(__file__).resolve().parents[2] / "deploy/k8s/README.md").read_text()
    assert CLUSTER_ISSUER in readme
    assert TLS_SECRET in readme
