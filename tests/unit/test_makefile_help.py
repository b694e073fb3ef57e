"""`make help` lists every Makefile target that has a `##` help string (a name with digits,
such as sqlc-e2e or bench-growth-10m, included), each under the one `##@` heading of its
concern, and every such target is .PHONY."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HELPED = re.compile(r"^([^\s:#=$]+):[^=\n]*?## (.*)$", re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def make_help() -> list[str]:
    done = subprocess.run(["make", "--no-print-directory", "-s", "help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return ANSI.sub("", done.stdout).splitlines()


def test_every_target_with_help_is_listed_with_its_text() -> None:
    helped = dict(HELPED.findall((ROOT / "Makefile").read_text()))
    assert {"sqlc-e2e", "bench-growth-10m", "test-closed-checkout"} <= helped.keys()
    rows = [line for line in make_help() if line.startswith("  ")]
    listed = {name: text.strip() for name, _, text in (r.strip().partition(" ") for r in rows)}
    assert listed == helped
    # one name column, wide enough that the longest name keeps a space before its text
    starts = {len(row) - len(row[2:].split(" ", 1)[1].lstrip()) for row in rows}
    assert len(starts) == 1


def test_each_heading_appears_once_and_every_helped_target_is_phony() -> None:
    makefile = (ROOT / "Makefile").read_text()
    headings = re.findall(r"^##@ (.*)$", makefile, re.M)
    assert len(headings) == len(set(headings)), "a `##@` heading repeats: group its targets"
    phony = re.search(r"^\.PHONY:((?:.*\\\n)*.*)$", makefile, re.M)
    assert phony
    missing = set(dict(HELPED.findall(makefile))) - set(phony.group(1).replace("\\", " ").split())
    assert not missing, f"not in .PHONY: {sorted(missing)}"
