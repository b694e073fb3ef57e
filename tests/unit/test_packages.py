"""tools/packages.py: which Debian packages each entry point needs, and what it says when
one cannot be installed (the real installs: a fresh machine's `make run` / `make test`)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tools import packages

ROOT = Path(__file__).resolve().parents[2]


def names(target: str) -> set[str]:
    return {p.name for p in packages.TARGETS[target]}


def test_targets() -> None:
    assert names("run") >= {"nginx", "nodejs", "npm", "prometheus"}
    extras = {"chromium", "wrk", "valgrind", "docker-compose", "kubectl", "curl", "jq", "lsof",
              "faketime", "etcd-server", "haproxy", "tini", "pgbouncer", "pgbackrest",
              "mariadb-backup", "redis-sentinel"}  # fmt: skip
    assert names("test") == names("run") | extras
    assert names("ci") >= names("test") | {"postgresql", "mariadb-server", "redis-server", "make"}
    assert names("backup") == {"pgbackrest", "mariadb-backup"}


def test_ci_and_make_use_the_one_list() -> None:
    assert "python3 -m tools.packages ensure ci --strict" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "-m tools.packages ensure run" in makefile
    assert "-m tools.packages ensure test" in makefile


def fake_command(directory: Path, name: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_a_command_on_path_means_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(packages, "SBIN", ())
    browser = packages.BROWSER[0]
    assert not packages.installed(browser)
    fake_command(tmp_path, "chromium-browser")
    assert packages.installed(browser)


def test_missing_and_not_installable_says_how(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not root (or no apt-get): nothing is installed, a note names the command; exit 0
    for make (the run goes on), 1 with --strict (CI)."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(packages, "SBIN", ())
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    others = (
        packages.METRICS
        + packages.LOAD
        + packages.LINTERS
        + packages.EXAMPLES
        + packages.CLOCKS
        + packages.HA
        + packages.BACKUPS
    )
    for package in ("node", "npm", *(p.commands[0] for p in others)):
        fake_command(tmp_path, package)
    assert packages.main(["ensure", "test"]) == 0
    err = capsys.readouterr().err
    assert "note: not installed (nginx: the gateway at :8080; chromium: the Swagger UI test)" in err
    assert "apt-get install -y nginx chromium" in err
    assert packages.main(["ensure", "test", "--strict"]) == 1


def test_nothing_missing_is_silent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    for command in ("nginx", "node", "npm", *(p.name for p in packages.METRICS)):
        fake_command(tmp_path, command)
    assert packages.main(["ensure", "run", "--strict"]) == 0
    assert capsys.readouterr().err == ""


def test_runs_with_the_standard_library_only() -> None:
    """.ci/run calls it with the system python3, before .venv exists: -S (no site-packages)."""
    done = subprocess.run(
        [sys.executable, "-S", "-m", "tools.packages", "list", "test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [p.name for p in packages.TARGETS["test"]]


def test_patroni_is_pinned_past_the_leader_key_overwrite() -> None:
    """Patroni 3.0.2 (Debian 12's) retakes the etcd3 leader key from a promoted standby
    (patroni/patroni#2689, fixed in 3.0.3): the tier's Patroni is PyPI's, pinned."""
    pins = [
        line.split("==")
        for line in packages.PATRONI_REQUIREMENTS.read_text().splitlines()
        if line.startswith("patroni[")
    ]
    assert len(pins) == 1, pins
    version = tuple(int(part) for part in pins[0][1].split("."))
    assert version >= (4, 0, 0), version
    assert "patroni" not in names("ci")  # never Debian's package beside it


def test_patroni_s_venv_that_cannot_be_built_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(packages, "PATRONI_VENV", tmp_path / "venv")
    monkeypatch.setattr(packages, "SYSTEM_PYTHON", tmp_path / "no-python3")
    why = packages.ensure_patroni()
    assert why is not None
    assert "python3-venv" in why
    assert not (tmp_path / "venv").exists()
