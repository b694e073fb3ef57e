"""Where TLS ends on Kubernetes: at the Gateway (ADR 0041; docs/operations.md, "Where TLS
ends"). Its listeners: `https` (443) terminates TLS with the certificate of the Secret
TLS_SECRET, which cert-manager writes (the prod overlay's Gateway annotation
`cert-manager.io/cluster-issuer` names the ClusterIssuer; a cluster without cert-manager
creates the Secret itself), and `http` (80), which only redirects to https (the HTTPRoute
`fixup-https-redirect`: 301, the same host and path). Every other route attaches to `https`
alone (`sectionName`): nothing of the API, a cookie least of all (the session cookies are
`Secure`), is ever served over plain HTTP. HSTS on every response (the ClientTrafficPolicy's
late response headers; a browser ignores it over plain HTTP, RFC 6797 section 8.1).
"""

from __future__ import annotations

from typing import Any

from tools.deploy.k8s_objects import metadata

GATEWAY_API = "gateway.networking.k8s.io/v1"
GATEWAY = "fixup"
HTTP_LISTENER = "http"
HTTPS_LISTENER = "https"
# the certificate and key (type kubernetes.io/tls) in the Gateway's namespace
TLS_SECRET = "fixup-tls"
# the ClusterIssuer cert-manager asks for the certificate of the prod overlay's host (its
# Gateway annotation; deploy/k8s/README.md says how to create one)
CLUSTER_ISSUER = "fixup-issuer"
CLUSTER_ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"
# a year, this host only (another host of the domain may still serve plain HTTP); no preload
HSTS = "max-age=31536000"
MIN_TLS_VERSION = "1.2"
REDIRECT_STATUS = 301


def listeners() -> list[dict[str, Any]]:
    """`http` then `https` (the prod overlay sets each one's hostname by index), each for the
    routes of the Gateway's own namespace."""
    same = {"namespaces": {"from": "Same"}}
    tls = {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": TLS_SECRET}]}
    return [
        {"name": HTTP_LISTENER, "protocol": "HTTP", "port": 80, "allowedRoutes": same},
        {
            "name": HTTPS_LISTENER,
            "protocol": "HTTPS",
            "port": 443,
            "tls": tls,
            "allowedRoutes": same,
        },
    ]


def parent_refs() -> list[dict[str, str]]:
    """What every route of the API and of the pages attaches to: the HTTPS listener only."""
    return [{"name": GATEWAY, "sectionName": HTTPS_LISTENER}]


def hsts_headers() -> dict[str, Any]:
    """The ClientTrafficPolicy's `headers` part: HSTS on every response."""
    header = {"name": "Strict-Transport-Security", "value": HSTS}
    return {"lateResponseHeaders": {"set": [header]}}


def redirect_route() -> dict[str, Any]:
    """`fixup-https-redirect`: every request to the `http` listener answered 301 to the same
    URL over https (no backend: a redirect rule has none)."""
    redirect = {"scheme": "https", "statusCode": REDIRECT_STATUS}
    rule = {
        "name": "to-https",
        "filters": [{"type": "RequestRedirect", "requestRedirect": redirect}],
    }
    return {
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": metadata("fixup-https-redirect"),
        "spec": {
            "parentRefs": [{"name": GATEWAY, "sectionName": HTTP_LISTENER}],
            "rules": [rule],
        },
    }
