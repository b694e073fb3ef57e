"""codegen/README.md's quick starts, followed as written: their SQL, sqlc.yaml and Python
blocks into a fresh directory, `sqlc generate` with the plugin as `sqlc-gen-fixup` on
PATH, then the Python runs on SQLite (no server) and prints what the README says; on
PostgreSQL the plugin's types command writes the lock first, from the test server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.servers import Servers
from tools.examples_page import fenced
from tools.sqlc_run import SQLC

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "codegen" / "README.md"
TIMEOUT = 120  # sqlc and the plugin on a loaded machine: a few seconds


def quick_start(title: str = "## Quick start") -> str:
    page = README.read_text()
    start = page.index(title)
    return page[start : page.index("\n## ", start + 1)]


def write_blocks(blocks: list[str], into: Path) -> None:
    for block in blocks:  # each block's first line names its file: `-- schema.sql`
        name = block.splitlines()[0].lstrip("-# ").split(",")[0]
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        (into / name).write_text(block)


def test_the_quick_start_runs_on_sqlite(tmp_path: Path) -> None:
    section = quick_start()
    blocks = [*fenced(section, "sql"), *fenced(section, "yaml"), *fenced(section, "python")]
    assert len(blocks) == 4, blocks
    write_blocks(blocks, tmp_path)
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


def test_the_postgresql_quick_start_types_avg_as_decimal_and_string_agg_as_str(
    tmp_path: Path, servers: Servers
) -> None:
    section = quick_start("## Quick start on PostgreSQL")
    blocks = [*fenced(section, "sql"), *fenced(section, "yaml")]
    assert len(blocks) == 3, blocks
    write_blocks(blocks, tmp_path)
    (tmp_path / "app" / "db").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sqlc-gen-fixup").symlink_to(ROOT / "codegen" / "bin" / "sqlc-gen-fixup")
    (bin_dir / "sqlc").symlink_to(SQLC)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    for command in (["sqlc-gen-fixup", "types", "--dsn", servers.pg_dsn], ["sqlc", "generate"]):
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
    generated = (tmp_path / "app" / "db" / "books.py").read_text()
    assert "    mean: Decimal | None\n    titles: str | None\n" in generated, generated
