"""`make new-service` on a temp copy of the tree: the scaffolded service's generated
repository, its own tests and the registry/gateway tests green, its /health through a
real NGINX, and `make remove-service` leaves the tree as it was (issue 32).

The copy is what git tracks or would track (no .venv, var/, node_modules); its `.venv`
links to this one's, and make never runs `install` there (`-o install`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.gateway_stack import answers, require_nginx, wait_until
from tests.servers import DatabaseFactory, free_port
from tools.service_process import ROOT

VENV = Path(sys.executable).parent.parent
MAKE = ["make", "--no-print-directory", "-o", "install", "-o", ".venv/.installed-stamp"]
PYTEST = [str(VENV / "bin" / "pytest"), "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
STEP_TIMEOUT = 120
# what make swag-check runs for the registry's derived files (tools.swag's own check would
# also judge the other services' documents, which others may be changing)
CHECKS = (
    ("tools.procfile",),
    ("tools.nginx",),
    ("tools.compose",),
    ("tools.prometheus",),
    ("tools.dashboards",),
    ("tools.k8s",),
    ("tools.kibana",),
    ("tools.env_example",),
)


def sh(tree: Path, *command: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        command,
        cwd=tree,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
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
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    copy = tmp_path / "tree"
    for rel in (name.decode() for name in listed if name):
        source = ROOT / rel
        if source.is_file():
            target = copy / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (copy / ".venv").symlink_to(VENV)
    git(copy, "init", "-q")
    git(copy, "add", "-A")
    git(copy, "commit", "-q", "-m", "base")
    return copy


def start(
    tree: Path, env: dict[str, str], gateway_port: int, status_port: int
) -> list[subprocess.Popen[bytes]]:
    """`python -m services.invoices` and `python -m tools.nginx run` of the copy."""
    python = str(VENV / "bin" / "python")
    nginx = ["-m", "tools.nginx", "run", "--listen", f"127.0.0.1:{gateway_port}"]
    nginx += ["--status-listen", f"127.0.0.1:{status_port}", "--workers", "1"]
    commands = {"service": [python, "-m", "services.invoices"], "nginx": [python, *nginx]}
    return [
        subprocess.Popen(
            command,
            cwd=tree,
            env={**os.environ, **env},
            stdout=(tree.parent / f"{name}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for name, command in commands.items()
    ]


def status(tree: Path) -> str:
    return git(tree, "status", "--porcelain", "--untracked-files=all")


async def test_new_service_runs_behind_nginx_and_remove_undoes_it(
    tree: Path, databases: DatabaseFactory
) -> None:
    require_nginx()
    sh(tree, *MAKE, "new-service", "name=invoices", "db=postgresql")
    changed = status(tree)
    for path in ("services/invoices/", "sql/invoices/", "migrations/invoices/", "Procfile"):
        assert path in changed, changed
    assert "invoices" in (tree / "nginx/compose/conf.d/30-gateway.conf").read_text()
    assert "INVOICES_DATABASE_URL=" in (tree / ".env.example").read_text()

    # the repository regenerates unchanged; the service's tests and the derived ones pass
    sh(tree, *MAKE, "sqlc", "db=invoices")
    assert status(tree) == changed
    for check in CHECKS:  # every file derived from the registry is current
        sh(tree, str(VENV / "bin" / "python"), "-m", *check, "check")
    sh(
        tree,
        *PYTEST,
        "tests/integration/test_invoices_api.py",
        "tests/unit/test_registry.py",
        "tests/unit/test_nginx_config.py",
    )
    sh(tree, str(VENV / "bin" / "ruff"), "check", "services/invoices")

    # the service and NGINX as processes of the copy: /api/invoices/health through NGINX
    dsn = databases.create("invoices", "postgresql")
    env = {"INVOICES_DATABASE_URL": dsn, "INVOICES_PORT": str(free_port())}
    sh(tree, str(VENV / "bin" / "python"), "-m", "tools.migrate", "up", "invoices", env=env)
    gateway_port, status_port = free_port(), free_port()
    processes = start(tree, env, gateway_port, status_port)
    try:
        url = f"http://127.0.0.1:{gateway_port}/api/invoices/health"

        async def healthy() -> bool:
            for proc in processes:
                assert proc.poll() is None, (tree.parent / "service.log").read_text()
            return await answers(url)

        await wait_until(healthy, f"GET {url} -> 200", seconds=30)
        listed = f"http://127.0.0.1:{gateway_port}/api/invoices/v1/invoices"
        assert await answers(listed)
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in processes:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    sh(tree, *MAKE, "remove-service", "name=invoices")
    assert status(tree) == "", "remove-service left changes"


def test_new_mysql_service_generates_its_repository(tree: Path, servers: object) -> None:
    sh(tree, *MAKE, "new-service", "name=ledgers", "db=mysql")
    models = (tree / "services/ledgers/db/models.py").read_text()
    assert "class Ledger:" in models
    sh(tree, *MAKE, "sqlc", "db=ledgers")
    sh(tree, str(VENV / "bin" / "mypy"), "services/ledgers")
    sh(tree, *MAKE, "remove-service", "name=ledgers")
    assert status(tree) == ""


def test_new_grpc_service_serves_its_rpc_and_remove_undoes_it(tree: Path, servers: object) -> None:
    """grpc=1: the proto and lib/pb, a servicer like points', its test over grpc.aio."""
    sh(tree, *MAKE, "new-service", "name=payouts", "db=postgresql", "grpc=1")
    changed = status(tree)
    for path in ("proto/payouts/v1/payouts.proto", "lib/pb/payouts/", "services/payouts/"):
        assert path in changed, changed
    entry = registry_line(tree, "payouts")
    assert "grpc_port=" in entry, entry
    assert "payouts" not in (tree / "nginx/compose/conf.d/30-gateway.conf").read_text()
    assert not (tree / "docs/openapi/payouts.json").exists()  # gRPC: no OpenAPI document
    assert "PAYOUTS_GRPC_PORT=" in (tree / ".env.example").read_text()

    sh(tree, *MAKE, "sqlc", "db=payouts")
    sh(tree, *MAKE, "proto-check")
    assert status(tree) == changed
    for check in CHECKS:
        sh(tree, str(VENV / "bin" / "python"), "-m", *check, "check")
    sh(
        tree,
        *PYTEST,
        "tests/integration/test_payouts_grpc.py",
        "tests/unit/test_registry.py",
        "tests/unit/test_nginx_config.py",
    )
    scaffolded = ["services/payouts", "tests/integration/test_payouts_grpc.py"]
    sh(tree, str(VENV / "bin" / "ruff"), "check", *scaffolded)
    sh(tree, str(VENV / "bin" / "ruff"), "format", "--check", *scaffolded)

    sh(tree, *MAKE, "remove-service", "name=payouts")
    assert status(tree) == "", "remove-service left changes"


def registry_line(tree: Path, name: str) -> str:
    lines = (tree / "lib/registry.py").read_text().splitlines()
    return next(line for line in lines if line.startswith(f'    Microservice("{name}",'))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["name=Bad-Name"], "lowercase letters and digits"),
        (["name=users"], "in lib/registry.py already"),
        (["name=point", "grpc=1"], "proto/point, lib/pb/point exist(s) already"),
    ],
)
def test_new_service_refuses_bad_names(tree: Path, args: list[str], message: str) -> None:
    done = subprocess.run(
        [*MAKE, "new-service", *args], cwd=tree, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert message in done.stderr
    assert status(tree) == ""
