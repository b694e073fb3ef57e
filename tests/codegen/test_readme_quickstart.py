"""codegen/README.md's quick start, followed as written: its SQL, sqlc.yaml and Python
blocks into a fresh directory, `sqlc generate` with the plugin as `sqlc-gen-fixup` on
PATH, then the Python runs on SQLite (no server) and prints what the README says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tools.examples_page import fenced
from tools.sqlc_run import SQLC

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "codegen" / "README.md"
TIMEOUT = 120  # sqlc and the plugin on a loaded machine: a few seconds


def quick_start() -> str:
    page = README.read_text()
    start = page.index("## Quick start")
    return page[start : page.index("\n## ", start + 1)]


def test_the_quick_start_runs_on_sqlite(tmp_path: Path) -> None:
    section = quick_start()
    blocks = [*fenced(section, "sql"), *fenced(section, "yaml"), *fenced(section, "python")]
    assert len(blocks) == 4, blocks
    for block in blocks:  # each block's first line names its file: `-- schema.sql`
        name = block.splitlines()[0].lstrip("-# ").split(",")[0]
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(block)
    (tmp_path / "app" / "db").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sqlc-gen-fixup").symlink_to(ROOT / "codegen" / "bin" / "sqlc-gen-fixup")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    sqlc = subprocess.run([str(SQLC), "generate"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT, check=False)  # fmt: skip
    assert sqlc.returncode == 0, sqlc.stderr
    assert (tmp_path / "app" / "db" / "notes.py").exists()
    run_env = {**os.environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    main = subprocess.run([sys.executable, "main.py"], cwd=tmp_path, env=run_env,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)  # fmt: skip
    assert main.returncode == 0, main.stderr
    assert main.stdout.strip() == "['hello']"
