"""What `make new-service` adds to files every service shares (tools/new_service.py): its
registry entry, its entries in the checked-in files above their marked lines, each from a
template of tools/scaffold/, and its Kubernetes component (deploy/k8s/services/<name>/,
from tools/scaffold/k8s/rest or grpc); `remove` takes the same text out again (the
component's folder is one of new_service.owned_paths)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from string import Template

from lib import registry
from tools.local.local_servers import DEFAULT_PORTS

SCAFFOLD = Path(__file__).resolve().parent / "scaffold"
# the checked-in files a service has entries in: each marked line, with the template
# (tools/scaffold/) of the entry `new` adds above it
MARKED: dict[str, dict[str, str]] = {
    "docker-compose.yml": {
        "  # `make new-service` adds its database above this line": "compose/database.yml.tmpl",
        "  # `make new-service` adds its address above this line": "compose/address.yml.tmpl",
        "  # `make new-service` adds its block above this line": "compose/app.yml.tmpl",
        "        # `make new-service` adds its service above this line": "compose/gateway.yml.tmpl",
    },
    "observability/prometheus/prometheus.yml": {
        "# `make new-service` adds its scrape job above this line": "prometheus/job.yml.tmpl",
    },
    "deploy/k8s/base/kustomization.yaml": {
        "  # `make new-service` adds its component above this line": "k8s/component.tmpl",
    },
    ".env.example": {
        "# `make new-service` adds its port above this line": "env/port.tmpl",
        "# `make new-service` adds its database above this line": "env/database.tmpl",
        "# `make new-service` adds its address above this line": "env/address.tmpl",
    },
    # a REST service's only: its upstream, its locations, the starter's create as replay-safe
    "nginx/conf.d/20-upstreams.conf": {
        "# `make new-service` adds its upstream above this line": "nginx/upstream.conf.tmpl",
    },
    "nginx/conf.d/30-gateway.conf": {
        "    # `make new-service` adds its locations above this line": "nginx/locations.conf.tmpl",
    },
    "nginx/conf.d/00-maps.conf": {
        "    # `make new-service` adds its create above this line": "nginx/create.conf.tmpl",
    },
}


def new_service(name: str, engine: registry.Engine, grpc: bool = False) -> registry.Microservice:
    """The registry entry: the next index; the HTTP (a gRPC service's side) port
    8100 + index, the gRPC port 50050 + index (each else the next free one)."""
    index = max(s.index for s in registry.MICROSERVICES) + 1
    every = [replace(s, replicas=registry.MAX_REPLICAS) for s in registry.MICROSERVICES]
    used = {p for s in every for p in (*s.http_ports, s.grpc_port) if p}

    def free(port: int) -> int:
        while port in used:
            port += 1
        return port

    grpc_port = free(50050 + index) if grpc else None
    return registry.Microservice(
        name, index, free(8100 + index), name, engine, built=True, grpc_port=grpc_port
    )


def registry_entry(service: registry.Microservice) -> str:
    """Its line of MICROSERVICES."""
    extra = f", grpc_port={service.grpc_port}" if service.grpc_port else ""
    fields = f'"{service.name}", {service.index}, {service.port}, "{service.database}"'
    return f'    Microservice({fields}, "{service.engine}", built=True{extra}),\n'


def marked_entries(service: registry.Microservice) -> dict[str, dict[str, str]]:
    """file -> its marked line -> the service's entry above it: in docker-compose.yml its
    database, its address, its block, NGINX waiting for it; Prometheus' scrape job; in
    .env.example its port(s), database and address on one host; a REST service's NGINX
    upstream, locations and replay-safe create."""
    n = service.name
    if service.engine == "postgresql":
        url = f"postgresql://postgres:${{POSTGRES_PASSWORD}}@postgres:5432/fixup_{n}"
    else:
        url = f"mysql://root:${{MARIADB_ROOT_PASSWORD}}@mariadb:3306/fixup_{n}"
    prefix = n.upper()
    values = {"name": n, "NAME": prefix, "port": str(service.port), "database_url": url}
    values["local_database_url"] = service.default_database_url
    if service.grpc_port is not None:  # as lib/registry.py's peer_addresses()
        values["address"] = f"{prefix}_GRPC_ADDR: {n}:{service.grpc_port}"
        values["grpc_port"] = f"      {prefix}_GRPC_PORT: '{service.grpc_port}'\n"
        values["local_address"] = f"{prefix}_GRPC_ADDR={service.local_grpc_addr}"
        values["env_grpc_port"] = f"{prefix}_GRPC_PORT={service.grpc_port}\n"
    else:
        values["address"] = f"{prefix}_URL: http://{n}:{service.port}"
        values["local_address"] = f"{prefix}_URL={service.local_url}"
        values["grpc_port"] = values["env_grpc_port"] = ""
    return {
        path: {
            f"{marker}\n": Template((SCAFFOLD / template).read_text()).substitute(values)
            for marker, template in markers.items()
        }
        for path, markers in MARKED.items()
        if service.behind_gateway or not path.startswith("nginx/")
    }


def k8s_component(service: registry.Microservice) -> dict[str, str]:
    """deploy/k8s/services/<name>/'s files: the REST or gRPC template folder filled in."""
    folder = SCAFFOLD / "k8s" / ("grpc" if service.grpc_port is not None else "rest")
    values = {
        "name": service.name,
        "NAME": service.env_prefix,
        "port": str(service.http_port),
        "grpc_port": str(service.grpc_port),
        "engine_port": str(DEFAULT_PORTS[service.engine]),
        "users_port": str(registry.get("users").http_port),
    }
    return {
        f"deploy/k8s/services/{service.name}/{t.name.removesuffix('.tmpl')}": Template(
            t.read_text()
        ).substitute(values)
        for t in sorted(folder.glob("*.tmpl"))
    }


def lost_markers(root: Path) -> dict[str, list[str]]:
    """file -> its marked lines that are gone (a hand edit removed them)."""
    lost = {}
    for path, markers in MARKED.items():
        text = (root / path).read_text()
        gone = [m.strip() for m in markers if f"{m}\n" not in text]
        if gone:
            lost[path] = gone
    return lost


def add(root: Path, service: registry.Microservice) -> None:
    for path, text in k8s_component(service).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    for path, entries in marked_entries(service).items():
        text = (root / path).read_text()
        for marker, entry in entries.items():
            text = text.replace(marker, entry + marker)
        (root / path).write_text(text)


def remove(root: Path, service: registry.Microservice) -> None:
    for path, entries in marked_entries(service).items():
        text = (root / path).read_text()
        for written in entries.values():
            text = text.replace(written, "", 1)
        (root / path).write_text(text)


def not_as_written(root: Path, service: registry.Microservice) -> list[str]:
    """The files whose entry of `service` is not the text `add` writes (edited by hand, or
    never written by `add`): `remove` would leave it there."""
    return [
        path
        for path, entries in marked_entries(service).items()
        if any(written not in (root / path).read_text() for written in entries.values())
    ]
