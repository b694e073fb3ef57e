"""Run ruff (import sorting + formatting) over generated source: stable, lint-clean output."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .errors import CodegenError

# ruff beside the interpreter (a venv, the installed wheel's dependency), else on PATH
RUFF = Path(sys.executable).with_name("ruff")
if not RUFF.exists():
    RUFF = Path(shutil.which("ruff") or "ruff")
COMMON = ["--isolated", "--line-length", "100", "--target-version", "py311"]


def _ruff(args: list[str], source: str, name: str, first_party: tuple[str, ...]) -> str:
    # the project's own packages sort into their own block (option `first_party`); nothing
    # is first-party by default: the plugin knows no project's names
    known = ", ".join(repr(p) for p in first_party)
    config = ["--config", f"lint.isort.known-first-party = [{known}]"]
    proc = subprocess.run(
        [str(RUFF), *args, *COMMON, *config, "--stdin-filename", name, "-"],
        input=source,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    if proc.returncode != 0:
        raise CodegenError(f"generated {name} does not pass ruff:\n{proc.stderr or proc.stdout}")
    return proc.stdout


def format_source(source: str, name: str, first_party: tuple[str, ...] = ()) -> str:
    fixed = _ruff(["check", "--fix", "--select", "I,F401", "--quiet"], source, name, first_party)
    return _ruff(["format", "--quiet"], fixed, name, first_party)
