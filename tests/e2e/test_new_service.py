"""`make new-service` on a temp copy of the tree: the scaffolded services' generated
repositories, their own tests, the registry-derived unit tests and the registry-iterating
integration tests green on the scaffolded tree (the whole of tests/unit on a scaffolded tree:
tests/integration/test_recipes_followed.py), lint and types clean,
a REST one's route through a real NGINX (`make check-service`), and `make remove-service`
leaves the tree as it was (issues 32, 40). A refused name and a failure midway change
nothing.

The names are throwaway ones no person would choose, so `make test svc=X` of a real
service never selects this file (tests/conftest.py: a file named for X or importing it).

The copy is what git tracks or would track (no .venv, var/, node_modules); its `.venv`
links to this one's, and make never runs `install` there (`-o install`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.gateway_stack import require_nginx
from tests.servers import DatabaseFactory
from tools.checks.closed_checkout import copy_tree
from tools.local.service_process import ROOT
from tools.new_service import REGENERATE
from tools.time_scale import scaled

# what `make test svc=` selects it for (tests/selection.py): nothing,
# it scaffolds throwaway services, none of the registry's
EXERCISES = ()

VENV = Path(sys.executable).parent.parent
MAKE = ["make", "--no-print-directory", "-o", "install", "-o", ".venv/.installed-stamp"]
PYTEST = [str(VENV / "bin" / "pytest"), "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
STEP_TIMEOUT = scaled(40.0)  # one make step, about 40 s at load 3, times the factor
# the registry-iterating integration tests on the copy, one process, times the factor
ITERATING_TIMEOUT = scaled(120.0)


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
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
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
    # the scanners and linters tests/unit runs, installed beside the tree (not tracked)
    for tool in (
        ".venv-scan",
        *(f"tools/{t}/node_modules" for t in ("dclint", "apilint", "gatewaylint")),
    ):
        if (ROOT / tool).exists():
            (copy / tool).symlink_to(ROOT / tool)
    git(copy, "init", "-q")
    git(copy, "add", "-A")
    git(copy, "commit", "-q", "-m", "base")
    return copy


def status(tree: Path) -> str:
    return git(tree, "status", "--porcelain", "--untracked-files=all")


PG, MY, GRPC = "zzqprobepg", "zzqprobemy", "zzqprobegrpc"


@pytest.mark.timeout(STEP_TIMEOUT * 4 + ITERATING_TIMEOUT * 2)
def test_new_services_pass_their_tests_and_remove_undoes_them(
    tree: Path, databases: DatabaseFactory
) -> None:
    """One REST service per engine and a gRPC one in one copy: one run of each check."""
    require_nginx()
    python = str(VENV / "bin" / "python")
    sh(tree, *MAKE, "new-service", f"name={PG}", "db=postgresql")
    sh(tree, *MAKE, "new-service", f"name={MY}", "db=mysql")
    sh(tree, *MAKE, "new-service", f"name={GRPC}", "db=postgresql", "grpc=1")
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
    assert "Get an " not in (tree / f"services/{PG}/handlers.py").read_text()

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
    # its own tests, the constraint cases it wrote, and the registry-derived tests
    # (test_deploy: Compose's entries of each service, as the registry says; test_k8s and
    # test_k8s_security: its Kubernetes component rendered, as the registry says)
    derived = ["tests/unit/test_registry.py", "tests/unit/test_nginx_config.py"]
    derived += ["tests/unit/test_deploy.py", "tests/unit/test_k8s.py"]
    derived += ["tests/unit/test_k8s_security.py"]
    derived += ["tests/unit/test_service_lists.py", "tests/unit/test_openapi_examples.py"]
    derived += ["tests/integration/test_constraints.py", "tests/integration/test_access_matrix.py"]
    derived += ["tests/integration/test_list_walk.py"]
    mine = (
        "not (test_constraints or test_access_matrix or test_list_walk or valid_examples)"
        f" or {PG} or {MY} or {GRPC}"
    )
    sh(tree, *PYTEST, *tests[:3], *derived, "-k", mine)
    # the integration tests that iterate over the registry's services, both engines' new
    # ones among them (the whole unit suite on a scaffolded tree, every variant in one:
    # tests/integration/test_recipes_followed.py)
    iterating = ["tests/integration/test_conditional_stamps.py", "tests/integration/test_seed.py"]
    sh(tree, *PYTEST, "-x", *iterating, timeout=ITERATING_TIMEOUT)

    # `make check-service`: the service and NGINX as processes of the copy
    dsn = databases.create(PG, "postgresql")
    shown = sh(tree, *MAKE, "check-service", f"svc={PG}", env={f"{PG.upper()}_DATABASE_URL": dsn})
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
