"""Generate a conformance project as its users do (`tools.sqlc types`, then `generate`) into
a temporary directory, import the result, and type-check it with mypy --strict."""

from __future__ import annotations

import dataclasses
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tools import sqlc

ROOT = Path(__file__).resolve().parents[3]
PLUGIN = ROOT / "codegen" / "bin" / "sqlc-gen-fixup"


def generate(
    case: Path, into: Path, package: str, server_env: dict[str, str], *, lock: bool = True
) -> Path:
    """Copy `case` to `into`, lock its types on the real server, generate `package`; without
    `lock`, typed by sqlc's own types (no types lock, `allow: [sqlc_types]`)."""
    project = into / "project"
    shutil.copytree(case, project)
    config = yaml.safe_load((project / "sqlc.yaml").read_text())
    config["plugins"][0]["process"]["cmd"] = str(PLUGIN)
    config["sql"][0]["codegen"][0]["out"] = f"../{package}"
    if not lock:
        config["sql"][0]["codegen"][0]["options"].setdefault("allow", []).append("sqlc_types")
    (project / "sqlc.yaml").write_text(yaml.safe_dump(config))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server_env.items():
            patch.setenv(name, value)
        if lock:
            sqlc.types(str(project))
    sqlc.run_sqlc(project)
    return into / package


def import_generated(out: Path, module: str) -> ModuleType:
    sys.path.insert(0, str(out.parent))
    try:
        return importlib.import_module(f"{out.name}.{module}")
    finally:
        sys.path.remove(str(out.parent))


def mypy_strict(out: Path) -> subprocess.CompletedProcess[str]:
    """mypy --strict with the project's configuration on the generated package."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(ROOT)},
        check=False,
    )


def hints(cls: type) -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(cls)}
