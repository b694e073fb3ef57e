"""Committed generated files: write them, or (`check`) fail naming the stale ones."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def write_or_check(files: Mapping[Path, str], check: bool, command: str) -> int:
    """`files`: absolute path -> full text. -> exit status (1: some file is stale)."""
    if check:
        stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
        if stale:
            names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
            print(f"stale generated files: {names}; run {command}", file=sys.stderr)
            return 1
        return 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


def block_main(
    argv: list[str],
    tool: str,
    page: Path,
    regenerate: Callable[[str], str],
    errors: type[Exception],
    what: str,
) -> int:
    """`python -m tools.<tool> [check]` for a generated block of a page: rewrite `page`
    through `regenerate`, or (`check`) fail when it is stale. -> the exit status."""
    check = argv[1:] == ["check"]
    if argv[1:] and not check:
        print(f"usage: python -m tools.{tool} [check]", file=sys.stderr)
        return 2
    try:
        text = page.read_text()
        new = regenerate(text)
    except errors as e:
        print(f"{tool}: {e}", file=sys.stderr)
        return 1
    if check:
        if new != text:
            print(f"{tool}: {what} is stale: python -m tools.{tool}", file=sys.stderr)
            return 1
        return 0
    page.write_text(new)
    return 0
