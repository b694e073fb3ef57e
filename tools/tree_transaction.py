"""The new-service and remove-service transaction over the working tree (tools/new_service.py).

Every file is read first; a failure (or Ctrl-C) anywhere inside puts back what was added,
changed or deleted (the tree is a few MB). The snapshot is also written to
var/new-service.journal before the first change (whole, by a rename), so a run killed
outright, where no `except` runs, is undone by the next run (`recover`, under the
command's lock: tools/local/locks.py)."""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from lib import registry

UNTRACKED = frozenset({".git", ".venv", "node_modules", "var", "mutants", "test-artifacts"})
JOURNAL = Path("var") / "new-service.journal"  # the tree as it was, while a run writes


def _files(root: Path) -> tuple[dict[Path, bytes], set[Path]]:
    """Every file's content and every folder of the tree (caches and environments not)."""
    found: dict[Path, bytes] = {}
    folders: set[Path] = set()
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in UNTRACKED and not d.startswith((".", "__"))]
        folders.add(Path(folder).relative_to(root))
        for file_name in names:
            path = Path(folder, file_name)
            if not path.is_symlink():
                found[path.relative_to(root)] = path.read_bytes()
    return found, folders


def _restore(root: Path, before: dict[Path, bytes], folders: set[Path]) -> None:
    """Put the tree back as `before` and `folders` were: what was added goes, what was
    changed or deleted comes back."""
    after, now = _files(root)
    for folder in sorted(now - folders, key=lambda p: len(p.parts)):
        shutil.rmtree(root / folder, ignore_errors=True)  # new: with its caches
    for path in after.keys() - before.keys():
        (root / path).unlink(missing_ok=True)
    for path, content in before.items():
        if after.get(path) != content:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(content)


def recover(root: Path) -> None:
    """A run killed half-way (SIGKILL, a power cut: no `except` ran) left its journal:
    the tree goes back to what it was before that run, so this one starts clean."""
    journal = root / JOURNAL
    if not journal.exists():
        return
    command, before, folders = pickle.loads(journal.read_bytes())
    _restore(root, before, folders)
    journal.unlink()
    importlib.reload(registry)  # read at import: it may hold the killed run's entry
    print(f"{command}: a run killed half-way was undone first", file=sys.stderr)


@contextlib.contextmanager
def transaction(root: Path, command: str) -> Iterator[None]:
    """A failure (or Ctrl-C) anywhere inside leaves the tree as it was: every file is read
    first, and what was added, changed or deleted is put back (the tree is a few MB). The
    snapshot is written to var/ first (renamed into place whole), so a run killed outright
    is undone by the next one (`recover`)."""
    before, folders = _files(root)
    journal = root / JOURNAL
    journal.parent.mkdir(parents=True, exist_ok=True)
    partial = journal.with_suffix(".partial")
    partial.write_bytes(pickle.dumps((command, before, folders)))
    partial.replace(journal)
    try:
        yield
    except BaseException:
        _restore(root, before, folders)
        journal.unlink(missing_ok=True)
        print(f"{command}: failed, so every file is as it was before", file=sys.stderr)
        raise
    journal.unlink()
