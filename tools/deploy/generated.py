"""Committed generated files: write them, or (`check`) fail naming the stale ones."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def write_or_check(files: Mapping[Path, str], check: bool, command: str) -> int:
    """`files`: absolute path -> full text. -> exit status (1: some file is stale). Writing
    touches and names (`wrote <path>`) only the files whose text changes."""
    if check:
        stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
        if stale:
            names = ", ".join(shown(p) for p in stale)
            print(f"stale generated files: {names}; run {command}", file=sys.stderr)
            return 1
        return 0
    for path, text in files.items():
        if path.exists() and path.read_text() == text:
            continue  # as it was: neither rewritten nor listed
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {shown(path)}")
    return 0


def shown(path: Path) -> str:
    """`path` relative to the repository when it is inside it."""
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
