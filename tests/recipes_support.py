"""docs/recipes.md read by section, and its commands run in a copy of the tree: what
tests/test_recipes.py and tests/integration/test_recipes_followed.py share."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tools.local.service_process import ROOT

RECIPES = ROOT / "docs" / "recipes.md"


def section(title: str) -> str:
    """The text of the recipe `## title` (up to the next `## `)."""
    page = RECIPES.read_text()
    start = page.index(f"\n## {title}\n")
    end = page.find("\n## ", start + 1)
    return page[start : end if end != -1 else len(page)]


def run_in(
    tree: Path, command: list[str], timeout: float, env: dict[str, str] | None = None
) -> str:
    """`command` run in `tree`; -> its output. A failure is the command's exit and the end
    of what it printed."""
    done = subprocess.run(
        command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{output[-8000:]}"
    return output
