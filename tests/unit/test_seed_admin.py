"""The seed never creates the ADMIN with a default password outside the local dev run
(issue 42): a missing or documented-default SEED_ADMIN_PASSWORD stops `python -m tools.local.seed`
before it connects to any database, and the message says how to set one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tools.deploy.generated import ROOT
from tools.local import seed

# no server listens here: a seed that got past the check would fail connecting instead
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


def run_seed(*args: str, admin_password: str | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    env |= {f"{db.upper()}_DATABASE_URL": UNREACHABLE for db, _, _ in seed.SEEDERS}
    if admin_password is not None:
        env["SEED_ADMIN_PASSWORD"] = admin_password
    return subprocess.run(
        [sys.executable, "-m", "tools.local.seed", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("password", [None, "", seed.DEFAULT_ADMIN_PASSWORD])
def test_refuses_a_missing_or_default_admin_password(password: str | None) -> None:
    done = run_seed(admin_password=password)
    assert done.returncode != 0
    assert "refusing to create admin@fixup.test" in done.stderr, done.stderr
    assert "set SEED_ADMIN_PASSWORD" in done.stderr
    assert "could not connect" not in done.stderr.lower()  # stopped before any database


def test_the_local_dev_run_falls_back_to_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make run` passes --local-dev: past the check, the seed goes on to the databases."""
    done = run_seed("--local-dev", admin_password=None)
    assert "refusing" not in done.stderr
    assert done.returncode == 2  # the unreachable server
    assert "seed: " in done.stderr
    monkeypatch.delenv("SEED_ADMIN_PASSWORD", raising=False)
    assert seed.admin_password(local_dev=True) == seed.DEFAULT_ADMIN_PASSWORD


def test_a_password_of_ones_own_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEED_ADMIN_PASSWORD", "a-password-of-my-own")
    assert seed.admin_password(local_dev=False) == "a-password-of-my-own"
    assert seed.admin_password(local_dev=True) == "a-password-of-my-own"
