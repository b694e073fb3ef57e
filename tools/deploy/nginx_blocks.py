"""The gateway's blocks derived from lib/registry.py, for tools/deploy/nginx.py's `${UPSTREAMS}`,
`${SERVICE_LOCATIONS}` and `${REPLAY_SAFE_ROUTES}`: one `upstream` and the
`location /api/<name>/` blocks per REST service (built or not: one not built answers 503),
so a new service needs no NGINX edit; the writes the gateway may send twice are the
operations whose committed OpenAPI document (docs/openapi/) declares `Idempotency-Key`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from lib import registry

OPENAPI_DIR = Path(__file__).resolve().parents[2] / "docs" / "openapi"
# a replica that failed once (refused, reset, timed out) gets nothing for this long; a new
# one started where one failed takes traffic only after it (a release waits for that)
FAIL_TIMEOUT = 5.0
# the internal locations of replay-safe writes (replay_block)
REPLAY_PREFIX = "/_replay"
# service -> the ports of its replicas (lib/registry.py); a gRPC service's: its side port
HTTP_SERVICES: dict[str, tuple[int, ...]] = {
    service.name: service.http_ports for service in registry.routed_services()
}


class RenderError(ValueError):
    pass


def parse_upstreams(items: Sequence[str]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for item in items:
        name, sep, addresses = item.partition("=")
        if not sep or name not in HTTP_SERVICES or not addresses:
            raise RenderError(
                f"--upstream {item!r}: expected SVC=HOST:PORT[,HOST:PORT...] with SVC one of "
                + ", ".join(HTTP_SERVICES)
            )
        result[name] = [a.strip() for a in addresses.split(",") if a.strip()]
    return result


def upstream_block(service: registry.Microservice, servers: Sequence[str]) -> str:
    """The service's `upstream`: its replicas, pooled keep-alive connections."""
    lines = [f"upstream {service.name} {{"]
    if service.websocket:
        lines.append("    # WebSocket connections are long-lived: spread them by load, not in turn")
        lines.append("    least_conn;")
    fail = nginx_time(FAIL_TIMEOUT)
    lines += [f"    server {address} max_fails=1 fail_timeout={fail};" for address in servers]
    lines += ["    keepalive 16;", "    keepalive_timeout 60s;", "}"]
    return "\n".join(lines)


def location_blocks(service: registry.Microservice) -> str:
    """`/api/<name>/` -> the service with the prefix stripped; an upload route first (a
    regex location wins over the prefix one) with its larger body limit; a WebSocket
    service passes the upgrade and reads for longer than its 20 s pings."""
    name = service.name
    blocks = []
    for upload in service.uploads:
        lines = [f"    # {upload.comment}"] if upload.comment else []
        match = f"~ ^/api/{name}{upload.path}$"
        lines.append(stripped_location(name, match, f"client_max_body_size {upload.max_body};"))
        blocks.append("\n".join(lines))
    lines = [
        f"    location /api/{name}/ {{",
        f"        set $fixup_service {name};",
        "        # a write with an Idempotency-Key may go to the next replica (below)",
        "        if ($fixup_replay_safe) {",
        f"            rewrite ^/api/{name}/(.*)$ {REPLAY_PREFIX}/{name}/$1 last;",
        "        }",
        "        include snippets/proxy.conf;",
    ]
    if service.websocket:
        lines += [
            "        # WebSocket: pass the upgrade; the server pings every 20 s, so a read",
            "        # timeout of 75 s only closes connections that are dead",
            "        proxy_set_header Upgrade $http_upgrade;",
            "        proxy_read_timeout 75s;",
            "        proxy_send_timeout 75s;",
        ]
    lines += [f"        proxy_pass http://{name}/;", "    }"]
    blocks.append("\n".join(lines))
    blocks.append(replay_block(name))
    return "\n\n".join(blocks)


def side_route_blocks(service: registry.Microservice) -> str:
    """A gRPC service's side-port paths (`side_routes`), each exact, the `/api/<name>`
    prefix stripped (the service answers a method it does not serve 405)."""
    name = service.name
    return "\n\n".join(
        stripped_location(name, f"= /api/{name}{path}") for path in service.side_routes
    )


def stripped_location(name: str, match: str, *settings: str) -> str:
    """A `location <match>` passed to upstream `name` with `/api/<name>` stripped (its
    query kept), with `settings` of its own."""
    return "\n".join(
        [
            f"    location {match} {{",
            f"        set $fixup_service {name};",
            *(f"        {setting}" for setting in settings),
            "        include snippets/proxy.conf;",
            f"        rewrite ^/api/{name}(/.*)$ $1 break;",
            f"        proxy_pass http://{name};",
            "    }",
        ]
    )


def replay_safe_operations(openapi_dir: Path = OPENAPI_DIR) -> list[tuple[str, str, str]]:
    """(METHOD, service, path regex after /api/<service>) of each write to an operation that
    takes `Idempotency-Key` (a repeat answers the first response): the gateway may send it
    twice when it carries a key. NGINX's map and the Kubernetes HTTPRoutes read this."""
    out = []
    for service in registry.gateway_services():
        document = openapi_dir / f"{service.name}.json"
        if not document.is_file():  # not built: nothing to replay
            continue
        for path, item in json.loads(document.read_text())["paths"].items():
            for method, op in item.items():
                names = {p.get("name") for p in op.get("parameters", []) if isinstance(p, dict)}
                if method in ("post", "patch") and "Idempotency-Key" in names:
                    route = re.sub(r"\\{[^/}]+\\}", "[^/]+", re.escape(path))
                    out.append((method.upper(), service.name, route))
    return out


def replay_safe_routes(openapi_dir: Path = OPENAPI_DIR) -> str:
    """`map` lines for 00-maps.conf: "METHOD URI KEY" of a write to an operation that takes
    `Idempotency-Key` (a repeat answers the first response), with a key -> 1."""
    return "\n".join(
        f'    "~^{method} /api/{name}{route} \\S"  1;'
        for method, name, route in replay_safe_operations(openapi_dir)
    )


def replay_block(name: str) -> str:
    """The internal location of a write carrying an Idempotency-Key to an operation that
    honours it: replay-safe (the service answers a repeat with the first response), so
    NGINX passes it to the next replica after a connection error or timeout even once
    sent (ADR 0022)."""
    return "\n".join(
        [
            f"    location {REPLAY_PREFIX}/{name}/ {{",
            "        internal;",
            f"        set $fixup_service {name};",
            "        include snippets/proxy.conf;",
            "        proxy_next_upstream error timeout non_idempotent;",
            f"        proxy_pass http://{name}/;",
            "    }",
        ]
    )


def default_servers(service: str, env: Mapping[str, str], replicas: int | None = None) -> list[str]:
    """The registry's replicas (`replicas`: that many of them, as `make run replicas=N`
    starts); `<SVC>_PORT` moves the first one (as it does in the Procfile)."""
    scaled = {s.name: s for s in registry.scaled(replicas)}
    ports = [str(p) for p in scaled[service].http_ports]
    port = env.get(f"{service.upper()}_PORT")
    if port:
        ports[0] = port
    return [f"127.0.0.1:{p}" for p in ports]


def nginx_time(seconds: float) -> str:
    """Seconds as nginx writes a time: `10s`, or `500ms` (it takes no fraction)."""
    millis = round(seconds * 1000)
    if millis <= 0:
        raise ValueError(f"a timeout of {seconds} s: it must be at least 1 ms")
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"
