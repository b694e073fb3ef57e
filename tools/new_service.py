"""`make new-service name=X db=postgresql|mysql [grpc=1]` and `make remove-service name=X`.

`new` adds X to lib/registry.py (the next index, the first free ports), writes a working
service from tools/scaffold/ (app, settings, handlers, schemas; a starter migration,
query file and sqlc.yaml; an API test), then regenerates everything derived: its typed
repository (`make sqlc`), its OpenAPI document, the Procfile, NGINX's compose copy,
`.env.example`, Compose, Prometheus, the dashboards, Kubernetes and Kibana. `remove`
deletes what `new` wrote (the files of the service, its database's folders, its
document and test) and its registry entry, and regenerates the same files: on a tree
where nothing else changed, the tree is as before.

What is left to the person is what only they can say: the queries, migrations, schemas,
handlers and tests of the service's own behaviour.

With `grpc=1` the service is modelled on points instead: `proto/X/v1/X.proto` (one unary
Get<Thing> by id on the starter table), `lib/pb` regenerated (`make proto`), a servicer
served by lib.grpc.server (health, reflection, interceptors, metrics) plus the side port's
/health /ready /metrics, a registry entry with a gRPC port (so not behind NGINX and no
OpenAPI document), and a test calling the RPC over a real grpc.aio channel.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template

from codegen.naming import pascal
from codegen.plan import model_name, singular
from lib import registry

ROOT = Path(__file__).resolve().parent.parent
SCAFFOLD = Path(__file__).resolve().parent / "scaffold"
REGISTRY = ROOT / "lib" / "registry.py"
MARKER = "    # `make new-service` adds its entry above this line\n"
NAME = re.compile(r"^[a-z][a-z0-9]{1,29}$")
# generators of the files derived from the registry, in order (each a fresh process: the
# registry is read at import); `make deploy-gen` + procfile + nginx-compose
REGENERATE: tuple[tuple[str, ...], ...] = (
    ("tools.procfile",),
    ("tools.nginx", "compose"),
    ("tools.env_example",),
    ("tools.compose",),
    ("tools.prometheus", "compose"),
    ("tools.slo",),  # lib/slo.py's defaults for the new service
    ("tools.dashboards",),
    ("tools.k8s",),
    ("tools.kibana",),
)


class ScaffoldError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Scaffold:
    """Where each template of tools/scaffold/ goes for service `name` on `engine`."""

    name: str
    engine: registry.Engine
    grpc: bool = False

    def values(self) -> dict[str, str]:
        postgres = self.engine == "postgresql"
        return {
            "name": self.name,
            "NAME": self.name.upper(),
            "Name": pascal(self.name),
            "Model": model_name(self.name),
            "model": singular(self.name),
            "Settings": f"{pascal(self.name)}Settings",
            "ID": "uuid.UUID" if postgres else "str",
            "new_id": "uuid.uuid4()" if postgres else "str(uuid.uuid4())",
            "key": "path_uuid(request)" if postgres else "str(path_uuid(request))",
            "grpc_key": "parse_id(message.id)" if postgres else "str(parse_id(message.id))",
            # the list queries' LIMIT/OFFSET parameters as the codegen names them
            "page_args": "row_offset=page.offset, row_limit=page.limit"
            if postgres
            else "offset=page.offset, limit=page.limit",
        }

    def files(self) -> dict[str, Path]:
        """Template (relative to tools/scaffold) -> target (relative to the root)."""
        n = self.name
        if self.grpc:
            out = {
                f"grpc/{module}.py.tmpl": Path(f"services/{n}/{module}.py")
                for module in ("__main__", "app", "settings", "service")
            }
            out["service/__init__.py.tmpl"] = Path(f"services/{n}/__init__.py")
            out["grpc/proto.tmpl"] = Path(f"proto/{n}/v1/{n}.proto")
            out["grpc/test_grpc.py.tmpl"] = Path(f"tests/integration/test_{n}_grpc.py")
        else:
            out = {
                f"service/{module}.py.tmpl": Path(f"services/{n}/{module}.py")
                for module in ("__init__", "__main__", "app", "settings", "handlers", "schemas")
            }
            out["tests/test_api.py.tmpl"] = Path(f"tests/integration/test_{n}_api.py")
        out[f"{self.engine}/0001_initial.sql.tmpl"] = Path(f"migrations/{n}/0001_initial.sql")
        out[f"{self.engine}/0001_initial.rollback.sql.tmpl"] = Path(
            f"migrations/{n}/0001_initial.rollback.sql"
        )
        out[f"{self.engine}/sqlc.yaml.tmpl"] = Path(f"sql/{n}/sqlc.yaml")
        out[f"{self.engine}/queries.sql.tmpl"] = Path(f"sql/{n}/queries/{n}.sql")
        return out


def owned_paths(name: str) -> list[Path]:
    """Everything `new` creates for `name` (generated files included), root-relative."""
    return [
        Path(f"services/{name}"),
        Path(f"migrations/{name}"),
        Path(f"sql/{name}"),
        Path(f"tests/integration/test_{name}_api.py"),
        Path(f"tests/integration/test_{name}_grpc.py"),
        Path(f"proto/{name}"),
        Path(f"lib/pb/{name}"),  # its generated messages (the proto package is its name)
        Path(f"docs/openapi/{name}.json"),
        Path(f"observability/grafana/dashboards/service-{name}.json"),
        Path(f"deploy/k8s/base/{name}.yaml"),
    ]


def registry_entry(name: str, engine: registry.Engine, grpc: bool = False) -> str:
    """One line of MICROSERVICES: the next index; the HTTP (a gRPC service's side) port
    8100 + index, the gRPC port 50050 + index (each else the next free one)."""
    index = max(s.index for s in registry.MICROSERVICES) + 1
    used = {p for s in registry.MICROSERVICES for p in (*s.http_ports, s.grpc_port) if p}

    def free(port: int) -> int:
        while port in used:
            port += 1
        return port

    extra = f", grpc_port={free(50050 + index)}" if grpc else ""
    port = free(8100 + index)
    fields = f'"{name}", {index}, ({port},), "{name}", "{engine}", built=True{extra}'
    return f"    Microservice({fields}),\n"


def check_new(name: str, root: Path) -> None:
    if not NAME.match(name):
        raise ScaffoldError(
            f"name={name!r}: 2-30 lowercase letters and digits, starting with a letter "
            "(it is a Python package, a database and an environment prefix)"
        )
    if name in registry.BY_NAME or name in {s.database for s in registry.MICROSERVICES}:
        raise ScaffoldError(f"{name!r} is in lib/registry.py already")
    taken = [str(p) for p in owned_paths(name) if (root / p).exists()]
    if taken:
        raise ScaffoldError(f"{', '.join(taken)} exist(s) already: remove first")
    if MARKER not in (root / REGISTRY.relative_to(ROOT)).read_text():
        raise ScaffoldError("lib/registry.py lost the line `make new-service` adds above")


def run(root: Path, *command: str) -> None:
    """A tool in a fresh interpreter at `root`; its failure stops the scaffold."""
    done = subprocess.run([sys.executable, "-m", *command], cwd=root, check=False)
    if done.returncode != 0:
        raise ScaffoldError(f"`python -m {' '.join(command)}` failed ({done.returncode})")


def regenerate(root: Path) -> None:
    for command in REGENERATE:
        run(root, *command)


def new(name: str, engine: registry.Engine, root: Path = ROOT, *, grpc: bool = False) -> None:
    check_new(name, root)
    scaffold = Scaffold(name, engine, grpc)
    values = scaffold.values()
    for template, target in scaffold.files().items():
        text = Template((SCAFFOLD / template).read_text()).substitute(values)
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        (root / target).write_text(text)
    registry_file = root / REGISTRY.relative_to(ROOT)
    text = registry_file.read_text()
    entry = registry_entry(name, engine, grpc)
    registry_file.write_text(text.replace(MARKER, entry + MARKER))
    print(f"new-service: {name} in lib/registry.py, services/{name}/ and its sql/, migrations/")
    run(root, "tools.sqlc", "generate", name)
    if grpc:
        run(root, "tools.proto", "gen")  # a gRPC service has no OpenAPI document
    else:
        run(root, "tools.swag", "gen", name)
    regenerate(root)
    reached = "its gRPC port, see lib/registry.py" if grpc else f"GET /api/{name}/health via NGINX"
    code = f"proto/{name}/v1 (then make proto), service.py" if grpc else "schemas.py, handlers.py"
    print(
        f"new-service: done. Next: `make test svc={name}`, `make run` ({reached}); its own "
        f"behaviour goes in sql/{name}/queries, migrations/{name} (make migrate-new "
        f"db={name} name=...), services/{name}/ ({code}), and its tests"
    )


def remove(name: str, root: Path = ROOT) -> None:
    registry_file = root / REGISTRY.relative_to(ROOT)
    text = registry_file.read_text()
    entry = re.compile(rf'^    Microservice\("{re.escape(name)}", .*\n', re.M)
    if name not in registry.BY_NAME or not entry.search(text):
        raise ScaffoldError(f"{name!r} is not a one-line entry of lib/registry.py (new-service's)")
    grpc = (root / "proto" / name).is_dir()
    for path in owned_paths(name):
        target = root / path
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    registry_file.write_text(entry.sub("", text, count=1))
    if grpc:
        run(root, "tools.proto", "gen")
    regenerate(root)
    print(f"remove-service: {name} removed (its database fixup_{name} is left on the server)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.new_service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("new")
    add.add_argument("name")
    add.add_argument("--db", choices=["postgresql", "mysql"], default="postgresql")
    add.add_argument("--grpc", action="store_true")
    drop = sub.add_parser("remove")
    drop.add_argument("name")
    args = parser.parse_args(argv)
    try:
        if args.command == "new":
            new(args.name, args.db, grpc=args.grpc)
        else:
            remove(args.name)
    except ScaffoldError as exc:
        print(f"{args.command}-service: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
