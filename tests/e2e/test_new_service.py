"""docs/recipes.md's "Add a service" followed as written, on a temp copy of the tree: each
`make new-service` command the recipe gives, with its own name, and the same command on
every other engine it names (`db=mysql`), one tree holding every variant (the first with
the recipe's name, each other with the name and what varies appended: `invoicesgrpc`,
`invoicesmysql`). Then what the scaffold promises: the scaffolded services' generated
repositories, their own tests, the registry-iterating integration tests and the copy's
whole tests/unit green (a unit test that took the recipe's `invoices` as a free name
failed there), lint and types clean, a REST one's route through a real NGINX (`make
check-service`), and `make remove-service` leaves the tree as it was (issues 32, 40). A
refused name and a failure midway change nothing.

The copy is what git tracks or would track (no .venv, var/, node_modules); its `.venv`
links to this one's, and make never runs `install` there (`-o install`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.gateway_stack import require_nginx
from tests.recipes_support import section
from tests.servers import DatabaseFactory
from tools.checks.closed_checkout import copy_tree
from tools.local.service_process import ROOT
from tools.new_service import REGENERATE
from tools.time_scale import scaled

# what `make test svc=` selects it for (tests/selection.py): nothing, the services it
# scaffolds are the recipe's, in a copy
EXERCISES = ()

VENV = Path(sys.executable).parent.parent
MAKE = ["make", "--no-print-directory", "-o", "install", "-o", ".venv/.installed-stamp"]
PYTEST = [str(VENV / "bin" / "pytest"), "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
STEP_TIMEOUT = scaled(40.0)  # one make step, about 40 s at load 3, times the factor
SCAFFOLD_TIMEOUT = scaled(80.0)  # one scaffold, its repository typed by the test server
# the registry-iterating integration tests on the copy, one process, times the factor
ITERATING_TIMEOUT = scaled(120.0)
# tests/unit on two workers over the tree with every variant: two to three minutes at load 3
UNIT_TIMEOUT = scaled(240.0)
# tests/unit's scanners and linters, installed beside the tree (not tracked)
BESIDE = (".venv-scan", *(f"tools/{t}/node_modules" for t in ("dclint", "apilint", "gatewaylint")))


def sh(
    tree: Path, *command: str, env: dict[str, str] | None = None, timeout: float = STEP_TIMEOUT
) -> str:
    done = subprocess.run(
        command,
        cwd=tree,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{output[-8000:]}"
    return done.stdout


def git(tree: Path, *args: str) -> str:
    return sh(tree, "git", "-c", "user.email=t@t", "-c", "user.name=t", *args)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the working tree (tracked and untracked-but-not-ignored files) as a git
    repository of its own, so `git status` tells what a command changed."""
    copy = tmp_path / "tree"
    copy_tree(copy)
    (copy / ".venv").symlink_to(VENV)
    for tool in BESIDE:
        if (ROOT / tool).exists():
            (copy / tool).symlink_to(ROOT / tool)
    git(copy, "init", "-q")
    git(copy, "add", "-A")
    git(copy, "commit", "-q", "-m", "base")
    return copy


def status(tree: Path) -> str:
    return git(tree, "status", "--porcelain", "--untracked-files=all")


def arg(command: str, key: str) -> str:
    """`key=value`'s value in a make command."""
    found = re.search(rf"\b{key}=([a-z]+)", command)
    assert found, f"{key}= not in {command!r}"
    return found[1]


def scaffold_commands() -> dict[str, str]:
    """The recipe's `make new-service` commands, and its first on each other engine it names
    (`db=mysql` for MariaDB), each with the name its variant takes in the one tree."""
    text = section("Add a service")
    commands = re.findall(r"`make (new-service [^`]+)`", text)
    first = commands[0]
    for engine in re.findall(r"`db=([a-z]+)`", text):
        variant = re.sub(r"\bdb=[a-z]+", f"db={engine}", first)
        if variant not in commands:
            commands.append(variant)
    named = {}
    for index, command in enumerate(commands):
        name = arg(command, "name")
        if index:
            name += "grpc" if command.endswith(" grpc=1") else arg(command, "db")
        named[name] = re.sub(r"\bname=[a-z]+", f"name={name}", command)
    return named


COMMANDS = scaffold_commands()
# the REST service on PostgreSQL (the recipe's own), on MariaDB, and the gRPC one
PG, MY, GRPC = (
    next(n for n, c in COMMANDS.items() if c.endswith(end))
    for end in ("db=postgresql", "db=mysql", " grpc=1")
)


def test_the_recipe_gives_every_variant() -> None:
    assert {arg(c, "db") for c in COMMANDS.values()} == {"postgresql", "mysql"}, COMMANDS
    assert len(COMMANDS) == 3, COMMANDS
    assert arg(COMMANDS[PG], "name") == PG, COMMANDS  # the recipe's own name, as written


@pytest.mark.timeout(SCAFFOLD_TIMEOUT * 3 + STEP_TIMEOUT * 6 + ITERATING_TIMEOUT * 2 + UNIT_TIMEOUT)
def test_the_recipe_followed_passes_every_check_and_remove_undoes_it(
    tree: Path, databases: DatabaseFactory
) -> None:
    """Every variant of the recipe in one copy: one run of each check."""
    require_nginx()
    python = str(VENV / "bin" / "python")
    env = {}
    for name, command in COMMANDS.items():
        # make sqlc types the new repository on the test server (a database of this run)
        env[f"{name.upper()}_DATABASE_URL"] = databases.create(name, arg(command, "db"))
        sh(tree, *MAKE, *command.split(), env=env, timeout=SCAFFOLD_TIMEOUT)
    changed = status(tree)
    for path in (
        f"services/{PG}/",
        f"sql/{MY}/",
        f"migrations/{PG}/",
        "Procfile",
        "docker-compose.yml",
        "deploy/k8s/base/kustomization.yaml",
        *(f"deploy/k8s/services/{n}/" for n in (PG, MY, GRPC)),
    ):
        assert path in changed, changed
    for name in (PG, MY):  # its executed page, lifted into its document's examples
        for path in (f"services/{name}/examples.md", f"docs/openapi/examples/{name}.json"):
            assert path in changed, changed
    for path in (f"proto/{GRPC}/v1/{GRPC}.proto", f"lib/pb/{GRPC}/", f"services/{GRPC}/"):
        assert path in changed, changed
    assert PG in (tree / "nginx/compose/conf.d/30-gateway.conf").read_text()
    assert f"{PG.upper()}_DATABASE_URL=" in (tree / ".env.example").read_text()
    assert "grpc_port=" in registry_line(tree, GRPC)
    assert GRPC not in (tree / "nginx/compose/conf.d/30-gateway.conf").read_text()
    assert not (tree / f"docs/openapi/{GRPC}.json").exists()  # gRPC: no OpenAPI document
    assert f"{GRPC.upper()}_GRPC_PORT=" in (tree / ".env.example").read_text()
    article = "an" if PG[0] in "aeiou" else "a"  # "Get an invoice"
    assert f'"Get {article} {PG[0]}' in (tree / f"services/{PG}/handlers.py").read_text()

    # the repositories regenerate unchanged; every file derived from the registry is current
    sh(tree, python, "-m", "tools.sqlc", "check", PG, MY, GRPC)
    sh(tree, *MAKE, "proto-check")
    assert status(tree) == changed
    # make swag-check's checks of the rendered files (tools.swag's own check would also judge
    # the other services' documents, which others may be changing)
    for check in REGENERATE:
        sh(tree, python, "-m", *check, "check")
    sh(tree, python, "-m", "tools.openapi_examples", "check")
    ours = [f"services/{n}" for n in (PG, MY, GRPC)]
    tests = [f"tests/integration/test_{PG}_api.py", f"tests/integration/test_{MY}_api.py"]
    tests += [f"tests/integration/test_{GRPC}_grpc.py"]
    tests += [f"tests/integration/constraints_{n}.py" for n in (PG, MY, GRPC)]
    sh(tree, str(VENV / "bin" / "ruff"), "check", *ours, *tests)
    sh(tree, str(VENV / "bin" / "ruff"), "format", "--check", *ours, *tests)
    sh(tree, str(VENV / "bin" / "mypy"), *ours, *tests)
    # its own tests, and the constraint cases it wrote for the tests that walk every
    # service's tables and routes
    walks = ["tests/integration/test_constraints.py", "tests/integration/test_access_matrix.py"]
    walks += ["tests/integration/test_list_walk.py"]
    sh(tree, *PYTEST, *tests[:3], *walks, "-k", f"{PG} or {MY} or {GRPC}", env=env)
    # the integration tests that iterate over the registry's services, both engines' new
    # ones among them
    iterating = ["tests/integration/test_conditional_stamps.py", "tests/integration/test_seed.py"]
    sh(tree, *PYTEST, "-x", *iterating, env=env, timeout=ITERATING_TIMEOUT)
    # the whole of tests/unit, with every registry-derived test (Compose's entries, the
    # Kubernetes components, NGINX's routes, the service lists), on the tree with every
    # variant; bench/'s imports are its own: the scaffold writes nothing there
    bench = "tests/unit/test_dependencies.py::test_every_import_is_declared[bench]"
    unit = [PYTEST[0], "-q", "-p", "no:cacheprovider", "-n", "2", "-x", "tests/unit"]
    sh(tree, *unit, "--deselect", bench, env=env, timeout=UNIT_TIMEOUT)

    # `make check-service`: the service and NGINX as processes of the copy
    shown = sh(tree, *MAKE, "check-service", f"svc={PG}", env=env)
    assert f"/api/{PG}/v1/{PG}?limit=1 (ADMIN token) -> 200" in shown, shown

    for name in (PG, MY, GRPC):
        sh(tree, *MAKE, "remove-service", f"name={name}")
    assert status(tree) == "", "remove-service left changes"


def registry_line(tree: Path, name: str) -> str:
    lines = (tree / "lib/registry.py").read_text().splitlines()
    return next(line for line in lines if line.startswith(f'    Microservice("{name}",'))


def test_a_refused_name_or_a_failure_midway_changes_nothing(tree: Path) -> None:
    refused = subprocess.run(
        [*MAKE, "new-service", "name=ledger123"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
    )
    assert refused.returncode != 0
    assert "2-20 lowercase letters a-z" in refused.stderr
    assert status(tree) == ""
    # a generator fails after the service, registry and repository are written
    broken = tree / "tools" / "deploy" / "servicetable.py"
    broken.write_text(broken.read_text().replace("def main(", "def _main(", 1))
    git(tree, "commit", "-q", "-am", "a broken generator")
    failed = subprocess.run(
        [*MAKE, "new-service", f"name={PG}"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
    )
    assert failed.returncode != 0
    assert "every file is as it was before" in failed.stderr, failed.stderr
    assert status(tree) == ""
