"""`make new-service name=X db=postgresql|mysql [grpc=1]` and `make remove-service name=X`
(docs/recipes.md, "Add a service").

`new` adds X to lib/registry.py, writes a working service from tools/scaffold/, its
entries in the marked checked-in files (tools/service_entries.py) and regenerates what
derives from the registry; `remove` undoes exactly that. Both run in a transaction over
the tree (tools/tree_transaction.py) under var/locks/new-service.lock: a failure, Ctrl-C
or a killed run leaves the tree as it was.

`remove` refuses, before it deletes anything, a service something else uses (another
service's code, lib/ such as a client of it, tools/, bench/, another service's Kubernetes
component: tools/service_uses.py's `dependents`, each named) and one whose entries are not
the ones `new` writes (it would leave them). A service the reference ships is no exception
when neither holds: no list of them is kept. It never drops the service's database.
"""

from __future__ import annotations

import argparse
import keyword
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template

from pglast.keywords import RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS
from sqlglot.dialects.mysql import MySQL

from codegen.naming import model_name, pascal, singular, snake
from lib import registry
from tools import service_entries as entries
from tools.local.locks import LOCKS, LockBusy, file_lock
from tools.service_uses import dependents
from tools.tree_transaction import recover, transaction

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "lib" / "registry.py"
MARKER = "    # `make new-service` adds its entry above this line\n"
# letters only: the codegen splits digits off ("ledger123" -> module ledger_123.py)
NAME = re.compile(r"^[a-z]{2,20}$")
ENGINES: tuple[registry.Engine, ...] = ("postgresql", "mysql")
# words PostgreSQL (its keyword lists, as pglast carries them) or MySQL and MariaDB (sqlglot's
# list, and two MariaDB adds) reserve: the name is a bare table name in SQL
SQL_RESERVED = frozenset(
    {*RESERVED_KEYWORDS, *TYPE_FUNC_NAME_KEYWORDS, "current", "merge"}
    | {word.lower() for word in MySQL.Generator.RESERVED_KEYWORDS}
)
# a generated module of services/<name>/db/ besides the service's own
DB_MODULES = frozenset({"models", "runtime", "idempotency", "table_versions", "audit"})
# generators of the files derived from the registry, in order (each a fresh process: the
# registry is read at import); `make deploy-gen` + procfile + nginx-compose
REGENERATE: tuple[tuple[str, ...], ...] = (
    ("tools.deploy.procfile",),
    ("tools.deploy.nginx_copies",),
    ("tools.deploy.servicetable",),
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
        one = singular(self.name)
        return {
            "name": self.name,
            "NAME": self.name.upper(),
            "Name": pascal(self.name),
            "Model": model_name(self.name),
            "model": singular(self.name),
            "MODEL": singular(self.name).upper(),  # its shell variable in examples.md
            "article": f"{'an' if one[0] in 'aeiou' else 'a'} {one}",  # "an invoice"
            "Settings": f"{pascal(self.name)}Settings",
            "ID": "uuid.UUID" if postgres else "str",
            "new_id": "uuid.uuid4()" if postgres else "str(uuid.uuid4())",
            "key": "path_uuid(request)" if postgres else "str(path_uuid(request))",
            "grpc_key": "parse_id(message.id)" if postgres else "str(parse_id(message.id))",
            # the list queries' LIMIT/OFFSET parameters as the codegen names them
            "page_args": "row_offset=lp.offset, row_limit=lp.limit"
            if postgres
            else "offset=lp.offset, limit=lp.limit",
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
            # one template per module for both engines: the engine's own part is its
            # migration and queries (the same query names on both)
            out = {
                f"service/{module}.py.tmpl": Path(f"services/{n}/{module}.py")
                for module in ("__init__", "__main__", "app", "settings", "handlers", "schemas")
            }
            out["tests/test_api.py.tmpl"] = Path(f"tests/integration/test_{n}_api.py")
            # its executed examples: the OpenAPI document's (tools/openapi_examples.py)
            out["service/examples.md.tmpl"] = Path(f"services/{n}/examples.md")
        cases = "tests" if self.engine == "postgresql" else "mysql"
        out[f"{cases}/constraints.py.tmpl"] = Path(f"tests/integration/constraints_{n}.py")
        out[f"{self.engine}/0001_initial.sql.tmpl"] = Path(f"migrations/{n}/0001_initial.sql")
        out[f"{self.engine}/0001_initial.rollback.sql.tmpl"] = Path(
            f"migrations/{n}/0001_initial.rollback.sql"
        )
        # its audit trail (ADR 0057); MariaDB's version triggers and append-only triggers
        # are migrations of their own, which sqlc does not read
        migrations = (
            ("0002_audit_events",)
            if self.engine == "postgresql"
            else ("0002_version_triggers", "0003_audit_events", "0004_audit_events_append_only")
        )
        for migration in migrations:
            for part in ("", ".rollback"):
                out[f"{self.engine}/{migration}{part}.sql.tmpl"] = Path(
                    f"migrations/{n}/{migration}{part}.sql"
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
        Path(f"tests/integration/constraints_{name}.py"),
        Path(f"proto/{name}"),
        Path(f"lib/pb/{name}"),  # its generated messages (the proto package is its name)
        Path(f"docs/openapi/{name}.json"),
        Path(f"docs/openapi/examples/{name}.json"),  # lifted from services/<name>/examples.md
        Path(f"deploy/k8s/services/{name}"),
    ]


def check_new(name: str, engine: str, root: Path) -> None:
    """Every refusal comes here, before anything is written."""
    if engine not in ENGINES:
        raise ScaffoldError(f"db={engine!r}: one of {', '.join(ENGINES)}")
    if name in registry.BY_NAME or name in {s.database for s in registry.MICROSERVICES}:
        raise ScaffoldError(f"{name!r} is in lib/registry.py already")
    if not NAME.match(name):
        raise ScaffoldError(
            f"name={name!r}: 2-20 lowercase letters a-z "
            "(it is a Python package, a table, a database and an environment prefix)"
        )
    words = {name, singular(name)}
    if any(keyword.iskeyword(w) or snake(w) != w for w in words) or words & DB_MODULES:
        raise ScaffoldError(f"name={name!r}: a Python keyword or a name the codegen reserves")
    if words & SQL_RESERVED:
        raise ScaffoldError(f"name={name!r}: a word SQL reserves (it names the table)")
    prefix = f"{name.upper()}_"
    example = (root / ".env.example").read_text() if (root / ".env.example").exists() else ""
    clash = sorted(set(re.findall(rf"^#?\s*({prefix}[A-Z0-9_]+)=", example, re.M)))
    if clash:
        raise ScaffoldError(f"name={name!r}: its settings would clash with {', '.join(clash)}")
    taken = [str(p) for p in owned_paths(name) if (root / p).exists()]
    if taken:
        raise ScaffoldError(f"{', '.join(taken)} exist(s) already: remove first")
    if MARKER not in (root / REGISTRY.relative_to(ROOT)).read_text():
        raise ScaffoldError("lib/registry.py lost the line `make new-service` adds above")
    lost = entries.lost_markers(root)
    if lost:
        raise ScaffoldError(f"marked lines `make new-service` adds above are gone: {lost}")


def run(root: Path, *command: str) -> None:
    """A tool in a fresh interpreter at `root`; its failure stops the scaffold."""
    done = subprocess.run([sys.executable, "-m", *command], cwd=root, check=False)
    if done.returncode != 0:
        raise ScaffoldError(f"`python -m {' '.join(command)}` failed ({done.returncode})")


def regenerate(root: Path) -> None:
    for command in REGENERATE:
        run(root, *command)


def new(name: str, engine: registry.Engine, root: Path = ROOT, *, grpc: bool = False) -> None:
    with file_lock("new-service", folder=root / LOCKS.relative_to(ROOT)):
        recover(root)
        check_new(name, engine, root)
        with transaction(root, "new-service"):
            _write(name, engine, root, grpc)


def _write(name: str, engine: registry.Engine, root: Path, grpc: bool) -> None:
    scaffold = Scaffold(name, engine, grpc)
    values = scaffold.values()
    for template, target in scaffold.files().items():
        text = Template((entries.SCAFFOLD / template).read_text()).substitute(values)
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        (root / target).write_text(text)
    registry_file = root / REGISTRY.relative_to(ROOT)
    text = registry_file.read_text()
    service = entries.new_service(name, engine, grpc)
    registry_file.write_text(text.replace(MARKER, entries.registry_entry(service) + MARKER))
    entries.add(root, service)
    print(f"new-service: {name} in lib/registry.py, services/{name}/ and its sql/, migrations/")
    # a long name makes long lines: the written code is formatted as the repository is
    written = [str(t) for t in scaffold.files().values() if t.suffix == ".py"]
    run(root, "ruff", "format", "--quiet", *written)
    run(root, "tools.sqlc", "generate", name)
    if grpc:
        run(root, "tools.proto", "gen")  # a gRPC service has no OpenAPI document
    else:  # the examples of its own page first: the document carries them
        run(root, "tools.openapi_examples", "gen")
        run(root, "tools.swag", "gen", name)
    regenerate(root)
    reached = "its gRPC port, see lib/registry.py" if grpc else f"GET /api/{name}/health via NGINX"
    code = f"proto/{name}/v1 (then make proto), service.py" if grpc else "schemas.py, handlers.py"
    code += "" if grpc else ", examples.md"
    print(
        f"new-service: done. Next: `make test svc={name}`, "
        + ("" if grpc else f"`make check-service svc={name}` (its route through NGINX), ")
        + f"`make run` ({reached}); its own "
        f"behaviour goes in sql/{name}/queries, migrations/{name} (make migrate-new "
        f"db={name} name=...), services/{name}/ ({code}), and its tests"
    )


def check_remove(name: str, root: Path) -> str:
    """Every refusal of `remove` comes here, before anything is deleted; -> lib/registry.py's
    text without the service's entry."""
    if name not in registry.BY_NAME:
        raise ScaffoldError(f"{name!r} is not in lib/registry.py")
    users = dependents(name, root, [root / p for p in owned_paths(name)])
    if users:
        raise ScaffoldError(
            f"{name} is used by {', '.join(users)}: remove those uses first "
            "(remove-service takes out only what make new-service wrote)"
        )
    registry_file = root / REGISTRY.relative_to(ROOT)
    entry = re.compile(rf'^    Microservice\("{re.escape(name)}", .*\n', re.M)
    text = registry_file.read_text()
    if not entry.search(text):
        raise ScaffoldError(
            f"{name}'s entry in lib/registry.py is not the one line make new-service writes:"
            " remove-service undoes make new-service only, take it out by hand"
        )
    edited = entries.not_as_written(root, registry.get(name))
    if edited:
        raise ScaffoldError(
            f"{name}'s entries in {', '.join(edited)} are not the ones make new-service "
            "writes, so remove-service would leave them: make them so or take it out by hand"
        )
    return entry.sub("", text, count=1)


def remove(name: str, root: Path = ROOT) -> None:
    with file_lock("new-service", folder=root / LOCKS.relative_to(ROOT)):
        recover(root)
        without = check_remove(name, root)
        registry_file = root / REGISTRY.relative_to(ROOT)
        with transaction(root, "remove-service"):
            _remove(name, root, registry_file, without)
    print(f"remove-service: {name} removed (it never drops a database: its own, if made, is left)")


def _remove(name: str, root: Path, registry_file: Path, without: str) -> None:
    grpc = (root / "proto" / name).is_dir()
    for path in owned_paths(name):
        target = root / path
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    registry_file.write_text(without)
    entries.remove(root, registry.get(name))
    if grpc:
        run(root, "tools.proto", "gen")
    regenerate(root)


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
    except (ScaffoldError, LockBusy) as exc:
        print(f"{args.command}-service: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
