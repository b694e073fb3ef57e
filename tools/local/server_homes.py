"""Where a server that runs as another user keeps its files, and who owns them.

As root, the tools hand a server's directories to its own user (`hand_to`), who must pass
every parent on the way: a checkout under a 0700 home is closed to it. So a server whose
files belong to one run keeps them in `server_root(var)`, /var/tmp/fixup-<hash of var's
path> (ours, 0711), and `make run`'s and `make test`'s servers keep theirs there when their
user cannot pass `var/` (`passable`). Standard library only, like tools/local/local_servers.py."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path

# world-traversable on every Linux (1777), and unlike TMPDIR never someone's 0700 directory
SHARED = Path("/var/tmp")
# the checkout's var/: what the tests' servers are named after
VAR = Path(__file__).resolve().parents[2] / "var"


class StartError(RuntimeError):
    """A server of ours, or a tool run on one, failed: the one line a command prints
    (`up`, `make backup`, `make restore`) names what and why."""


def hand_to(owner: str, directory: Path, *files: Path) -> None:
    """`directory` (made if missing) and `files` belong to `owner` when we are root, the
    server's own user. A parent `owner` cannot pass through (a 0700 `mktemp -d`, /root) is
    refused here, named, instead of as "Permission denied" deep in the server's log."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    for path in (directory, *files):
        shutil.chown(path, owner, owner)
    if not _reaches(owner, "-w", directory):
        ancestors = [*reversed(directory.parents), directory]
        closed = next((p for p in ancestors if not _reaches(owner, "-x", p)), directory)
        raise StartError(
            f"the {owner} user cannot reach {directory}: {closed} is closed to it"
            f" (chmod o+x {closed}, or keep the checkout under a directory others can pass)"
        )


def _reaches(user: str, test: str, path: Path) -> bool:
    # by its path where PATH lacks it (a command run with a PATH of its own)
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    command = [runuser or "runuser", "-u", user, "--", "/usr/bin/test", test, str(path)]
    return subprocess.run(command).returncode == 0


def passable(owner: str, path: Path) -> bool:
    """Whether `owner` can reach `path` (its nearest existing ancestor when it is not made
    yet); always when we are not root, who would hand nothing over."""
    if os.geteuid() != 0:
        return True
    existing = next(p for p in (path, *path.parents) if p.exists())
    return _reaches(owner, "-x", existing)


def kept(var: Path, name: str, *owners: str) -> Path:
    """var/<name>, kept from one run to the next; in `server_root(var)` instead when one of
    the `owners` its servers run as cannot pass var/ (a checkout under a 0700 home)."""
    home = var / name
    if all(passable(owner, home) for owner in owners):
        return home
    return root_of(var) / name  # named only: whoever writes there makes it (`server_root`)


def root_of(var: Path) -> Path:
    """/var/tmp/fixup-<hash of var's absolute path>, made or not."""
    return SHARED / f"fixup-{hashlib.sha256(str(var.resolve()).encode()).hexdigest()[:12]}"


def server_root(var: Path = VAR) -> Path:
    """/var/tmp/fixup-<hash of var's absolute path>: made (0711) if missing; one that is
    not a directory of ours (a name taken in a shared directory) is refused."""
    root = root_of(var)
    with suppress(FileExistsError):
        root.mkdir(mode=0o711)
    if root.is_symlink() or not root.is_dir() or root.stat().st_uid != os.geteuid():
        raise StartError(f"{root} is not a directory of ours: remove it, or run as its owner")
    root.chmod(0o711)  # mkdir's mode is masked by the umask
    return root


def server_home(prefix: str, owner: str | None = None, var: Path = VAR) -> Path:
    """A new directory of one server under `server_root(var)`, unique (`prefix` + random),
    0700 and `owner`'s; without `owner` ours and 0755, for servers of several users below."""
    home = Path(tempfile.mkdtemp(prefix=prefix, dir=server_root(var)))
    if owner is None:
        home.chmod(0o755)
    else:
        hand_to(owner, home)
    return home


def remove_home(home: Path) -> None:
    """`home` and what its server left in it (the root stays: another server of the
    checkout may be making its home there at this moment)."""
    shutil.rmtree(home, ignore_errors=True)
