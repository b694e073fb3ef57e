"""The Kubernetes edge on the Gateway API, with Envoy Gateway as its controller (ADR 0035):
the Gateway `fixup`, one HTTPRoute per service behind it (/api/<svc>/x -> <svc>:/x, the
prefix stripped as our NGINX does), and the Envoy Gateway policies for what HTTPRoute has no
field for. Written into deploy/k8s/base by `python -m tools.deploy.k8s`; the GatewayClass (cluster
scoped) into deploy/k8s/envoy-gateway/.

The rules of our NGINX (nginx/conf.d/30-gateway.conf, tools/deploy/nginx_blocks.py) and where they
land here:
- timeouts: HTTPRoute `timeouts` (backendRequest = proxy_read_timeout, request = the whole
  exchange with its retries); connect 2 s and a pooled connection idle 60 s at most:
  BackendTrafficPolicy `timeout`;
- retry (ADR 0022): HTTPRoute `retry` (GEP-1731) on the rule of the idempotent methods and
  on the rule of the replay-safe writes (an Idempotency-Key to an operation that honours
  it); any other write has no retry;
- body limits: BackendTrafficPolicy `requestBuffer` (1 MiB; the picture upload's route its
  own; the WebSocket's route none: a buffered upgrade never reaches the service);
- slow clients, WebSocket idle, X-Request-ID: the Gateway's ClientTrafficPolicy;
- the access log without query strings: the Gateway's EnvoyProxy;
- `/.well-known/jwks.json` (users' JWK Set, ADR 0032), nginx's exact location: the route
  `fixup-jwks` (an Exact match, nothing below it, no rewrite). The services inside ask users
  directly (JWKS_URL), not through here.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lib import registry
from tools.deploy.k8s_gateway_tls import (
    GATEWAY,
    GATEWAY_API,
    MIN_TLS_VERSION,
    hsts_headers,
    listeners,
    parent_refs,
    redirect_route,
)
from tools.deploy.k8s_objects import metadata
from tools.deploy.nginx import CLIENT_BODY_TIMEOUT, CLIENT_HEADER_TIMEOUT
from tools.deploy.nginx_blocks import OPENAPI_DIR, replay_safe_operations

ENVOY_GATEWAY = "gateway.envoyproxy.io/v1alpha1"
ENVOY_GROUP = "gateway.envoyproxy.io"
GATEWAY_CLASS = "fixup"
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
# where Envoy Gateway runs the Gateway's Envoy pods (its Helm chart's namespace) and their
# labels: the services' NetworkPolicies admit these (tools/deploy/k8s_network.py)
PROXY_NAMESPACE = "envoy-gateway-system"
PROXY_LABELS = {
    "app.kubernetes.io/name": "envoy",
    "gateway.envoyproxy.io/owning-gateway-name": GATEWAY,
}

# our NGINX's bounds (nginx/conf.d/30-gateway.conf)
CONNECT_TIMEOUT = "2s"  # proxy_connect_timeout
# an idle pooled connection to a service closed by Envoy first: below the services'
# HTTP_KEEPALIVE_TIMEOUT (75 s, ADR 0005), as nginx's upstream `keepalive_timeout 60s`
# (Envoy's own default is an hour: it would send on a connection the service is closing)
UPSTREAM_IDLE_TIMEOUT = "60s"
BACKEND_TIMEOUT = "30s"  # proxy_read_timeout: one attempt
REQUEST_TIMEOUT = "60s"  # the whole exchange, a retry included
RETRY_ATTEMPTS = 2  # proxy_next_upstream_tries 3: the first try and two more
BODY_LIMIT = "1Mi"  # client_max_body_size 1m (docs/api.md: JSON bodies are 1 MiB max)
# the server pings every 20 s (nginx: proxy_read_timeout 75s on chat): a stream idle that
# long is dead. Envoy's stream idle bound holds for every stream; a request's own bound
# (above) is shorter, so only upgraded connections ever reach it
STREAM_IDLE_TIMEOUT = "75s"
# a slow client: nginx bounds the head (10 s) and each pause in a body (15 s); Envoy bounds
# the whole request, so the sum
REQUEST_RECEIVED_TIMEOUT = f"{round(CLIENT_HEADER_TIMEOUT + CLIENT_BODY_TIMEOUT)}s"
IDEMPOTENT = ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
KEY_PRESENT = r"\S.*"  # an Idempotency-Key that is not blank (nginx: `\S`)

# the access log as the gateway's (nginx/conf.d/10-logging.conf), but with no query string
# at all (Envoy cannot redact one, and an old mail link's `?token=` must not be logged) and
# no Referer: the path is REQ_WITHOUT_QUERY of the client's own path
ACCESS_LOG = {
    "time": "%START_TIME%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "remote_addr": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "status": "%RESPONSE_CODE%",
    "response_flags": "%RESPONSE_FLAGS%",
    "body_bytes_sent": "%BYTES_SENT%",
    "request_length": "%BYTES_RECEIVED%",
    "request_time": "%DURATION%",
    "upstream_response_time": "%RESPONSE_DURATION%",
    "upstream_addr": "%UPSTREAM_HOST%",
    "route": "%ROUTE_NAME%",
    "http_user_agent": "%REQ(USER-AGENT)%",
}


def envoy_proxy() -> dict[str, Any]:
    """The Gateway's own Envoy settings: its access log."""
    log = {
        "format": {"type": "JSON", "json": dict(ACCESS_LOG)},
        "sinks": [{"type": "File", "file": {"path": "/dev/stdout"}}],
    }
    return {
        "apiVersion": ENVOY_GATEWAY,
        "kind": "EnvoyProxy",
        "metadata": metadata("fixup-proxy"),
        "spec": {"telemetry": {"accessLog": {"settings": [log]}}},
    }


def gateway() -> dict[str, Any]:
    """Its listeners `http` (a redirect only) and `https` (TLS ends here:
    tools/deploy/k8s_gateway_tls.py; the prod overlay sets their hostname and the certificate's
    issuer); its Envoy settings by `infrastructure.parametersRef`."""
    parameters = {"group": ENVOY_GROUP, "kind": "EnvoyProxy", "name": "fixup-proxy"}
    return {
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": metadata(GATEWAY),
        "spec": {
            "gatewayClassName": GATEWAY_CLASS,
            "infrastructure": {"parametersRef": parameters},
            "listeners": listeners(),
        },
    }


def target(kind: str, name: str) -> dict[str, str]:
    group = "gateway.networking.k8s.io"
    return {"group": group, "kind": kind, "name": name}


def client_policy() -> dict[str, Any]:
    """Every client of the Gateway: slow ones cut, an idle WebSocket closed, X-Request-ID
    kept when the client sent one and made otherwise (each service then applies the id rule
    of docs/api.md to it and echoes it), TLS 1.2 at least, HSTS on every response."""
    return {
        "apiVersion": ENVOY_GATEWAY,
        "kind": "ClientTrafficPolicy",
        "metadata": metadata("fixup-clients"),
        "spec": {
            "targetRefs": [target("Gateway", GATEWAY)],
            "timeout": {
                "http": {
                    "requestReceivedTimeout": REQUEST_RECEIVED_TIMEOUT,
                    "streamIdleTimeout": STREAM_IDLE_TIMEOUT,
                }
            },
            "headers": {"requestID": "PreserveOrGenerate", **hsts_headers()},
            "tls": {"minVersion": MIN_TLS_VERSION},
        },
    }


def backend_policy(name: str, kind: str, of: str, body_limit: str | None) -> dict[str, Any]:
    """Connect bound, upstream idle bound and body limit of the routes it targets (one on
    an HTTPRoute replaces the Gateway's for that route)."""
    spec: dict[str, Any] = {
        "targetRefs": [target(kind, of)],
        "timeout": {
            "tcp": {"connectTimeout": CONNECT_TIMEOUT},
            "http": {"connectionIdleTimeout": UPSTREAM_IDLE_TIMEOUT},
        },
    }
    if body_limit is not None:
        spec["requestBuffer"] = {"limit": body_limit}
    return {
        "apiVersion": ENVOY_GATEWAY,
        "kind": "BackendTrafficPolicy",
        "metadata": metadata(name),
        "spec": spec,
    }


def strip_filter(name: str) -> dict[str, Any]:
    """/api/<name>/x -> /x for the rules that match a regular expression (HTTPRoute's
    ReplacePrefixMatch is only for PathPrefix matches)."""
    pattern = {"pattern": f"^/api/{name}/", "substitution": "/"}
    return {
        "apiVersion": ENVOY_GATEWAY,
        "kind": "HTTPRouteFilter",
        "metadata": metadata(f"fixup-strip-{name}"),
        "spec": {
            "urlRewrite": {"path": {"type": "ReplaceRegexMatch", "replaceRegexMatch": pattern}}
        },
    }


def prefix_rewrite() -> dict[str, Any]:
    rewrite = {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}
    return {"type": "URLRewrite", "urlRewrite": rewrite}


def regex_rewrite(name: str) -> dict[str, Any]:
    ref = {"group": ENVOY_GROUP, "kind": "HTTPRouteFilter", "name": f"fixup-strip-{name}"}
    return {"type": "ExtensionRef", "extensionRef": ref}


def backend(service: registry.Microservice) -> list[dict[str, Any]]:
    return [{"name": service.name, "port": service.http_port}]


def timeouts(request: str = REQUEST_TIMEOUT) -> dict[str, str]:
    return {"request": request, "backendRequest": BACKEND_TIMEOUT}


def route(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": metadata(name),
        "spec": {"parentRefs": parent_refs(), "rules": rules},
    }


def service_route(service: registry.Microservice) -> dict[str, Any]:
    """`fixup-<svc>`: the idempotent methods retried (a rule each); the replay-safe writes (their
    OpenAPI operation takes Idempotency-Key, and the request carries one) retried; every
    other write sent once (ADR 0022)."""
    prefix = {"type": "PathPrefix", "value": f"/api/{service.name}"}
    retry = {"attempts": RETRY_ATTEMPTS}
    # one rule per method: the CRD's rule "ReplacePrefixMatch with exactly one PathPrefix
    # match" (a CEL validation the API server applies)
    rules = [
        {
            "name": f"idempotent-{method.lower()}",
            "matches": [{"path": dict(prefix), "method": method}],
            "filters": [prefix_rewrite()],
            "backendRefs": backend(service),
            "timeouts": timeouts(),
            "retry": dict(retry),
        }
        for method in IDEMPOTENT
    ]
    replay = [
        {
            "path": {"type": "RegularExpression", "value": f"^/api/{service.name}{path}$"},
            "method": method,
            "headers": [
                {"type": "RegularExpression", "name": "Idempotency-Key", "value": KEY_PRESENT}
            ],
        }
        for method, name, path in replay_safe_operations()
        if name == service.name
    ]
    if replay:
        rules.append(
            {
                "name": "replay-safe",
                "matches": replay,
                "filters": [regex_rewrite(service.name)],
                "backendRefs": backend(service),
                "timeouts": timeouts(),
                "retry": dict(retry),
            }
        )
    rules.append(
        {
            "name": "once",
            "matches": [{"path": dict(prefix)}],
            "filters": [prefix_rewrite()],
            "backendRefs": backend(service),
            "timeouts": timeouts(BACKEND_TIMEOUT),
        }
    )
    return route(f"fixup-{service.name}", rules)


JWKS_PATH = "/.well-known/jwks.json"
JWKS_KEEPER = "users"


def jwks_route() -> dict[str, Any]:
    """`fixup-jwks`: the JWK Set at its well-known path, for verifiers outside the cluster;
    read-only, so retried as the idempotent methods."""
    rule = {
        "name": "jwks",
        "matches": [
            {"path": {"type": "Exact", "value": JWKS_PATH}, "method": method}
            for method in ("GET", "HEAD")
        ],
        "backendRefs": backend(registry.get(JWKS_KEEPER)),
        "timeouts": timeouts(),
        "retry": {"attempts": RETRY_ATTEMPTS},
    }
    return route("fixup-jwks", [rule])


def upload_route(service: registry.Microservice) -> dict[str, Any]:
    """`fixup-<svc>-uploads`: the routes with a larger body (their BackendTrafficPolicy)."""
    matches = [
        {"path": {"type": "RegularExpression", "value": f"^/api/{service.name}{u.path}$"}}
        for u in service.uploads
    ]
    rule = {
        "name": "uploads",
        "matches": matches,
        "filters": [regex_rewrite(service.name)],
        "backendRefs": backend(service),
        "timeouts": timeouts(BACKEND_TIMEOUT),
    }
    return route(f"fixup-{service.name}-uploads", [rule])


def websocket_route(service: registry.Microservice) -> dict[str, Any]:
    """`fixup-<svc>-websocket`: the upgrade (Envoy Gateway passes it on every route) with
    no request timeout ("0s": an open socket is not a slow request) and no body buffer;
    the ClientTrafficPolicy's stream idle bound closes a dead one."""
    header = {"type": "RegularExpression", "name": "Upgrade", "value": "(?i)websocket"}
    rule = {
        "name": "websocket",
        "matches": [
            {
                "path": {"type": "RegularExpression", "value": f"^/api/{service.name}{path}$"},
                "method": "GET",
                "headers": [header],
            }
            for path in service_websocket_paths(service)
        ],
        "filters": [regex_rewrite(service.name)],
        "backendRefs": backend(service),
        "timeouts": {"request": "0s"},
    }
    return route(f"fixup-{service.name}-websocket", [rule])


def service_websocket_paths(service: registry.Microservice) -> list[str]:
    """The paths (regex, after /api/<svc>) of the operations whose OpenAPI document answers
    101 Switching Protocols."""
    document = OPENAPI_DIR / f"{service.name}.json"
    if not service.websocket or not document.is_file():
        return []
    return [
        re.sub(r"\\{[^/}]+\\}", "[^/]+", re.escape(path))
        for path, item in json.loads(document.read_text())["paths"].items()
        if "101" in item.get("get", {}).get("responses", {})
    ]


def body_limit(upload_max: str) -> str:
    """nginx's `6m` as a Kubernetes quantity (`6Mi`)."""
    units = {"k": "Ki", "m": "Mi", "g": "Gi"}
    return (
        upload_max[:-1] + units[upload_max[-1].lower()]
        if upload_max[-1] in "kmgKMG"
        else upload_max
    )


def objects(built: list[registry.Microservice]) -> list[Any]:
    """deploy/k8s/base/gateway.yaml."""
    routed = [s for s in built if s.behind_gateway]
    out: list[Any] = [
        envoy_proxy(),
        gateway(),
        client_policy(),
        backend_policy("fixup-backends", "Gateway", GATEWAY, BODY_LIMIT),
        redirect_route(),
    ]
    for service in routed:
        regex = (
            service.uploads
            or service.websocket
            or any(name == service.name for _, name, _ in replay_safe_operations())
        )
        if regex:
            out.append(strip_filter(service.name))
        out.append(service_route(service))
        if service.uploads:
            largest = max((body_limit(u.max_body) for u in service.uploads), key=quantity_bytes)
            out.append(upload_route(service))
            name = f"fixup-{service.name}-uploads"
            out.append(backend_policy(name, "HTTPRoute", name, largest))
        if service_websocket_paths(service):  # none until its OpenAPI document is built
            name = f"fixup-{service.name}-websocket"
            out.append(websocket_route(service))
            out.append(backend_policy(name, "HTTPRoute", name, None))
        if service.name == JWKS_KEEPER:
            out.append(jwks_route())
    return out


def quantity_bytes(quantity: str) -> int:
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * factor
    return int(quantity)
