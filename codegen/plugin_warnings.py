"""The plugin's warnings: on stderr and in a file, since sqlc drops a plugin's stderr when
it succeeds."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def warnings_file(sqlc_pid: int) -> Path:
    """sqlc drops a plugin's stderr when it succeeds: warnings also go to this file, which
    a driving tool may print and remove (keyed by the pid of the sqlc that ran the plugin)."""
    return Path(tempfile.gettempdir()) / f"sqlc-gen-fixup-{sqlc_pid}.warnings"


def warn(messages: list[str]) -> None:
    lines = [f"sqlc-gen-fixup: warning: {message}\n" for message in messages]
    sys.stderr.write("".join(lines))
    if lines:
        with warnings_file(os.getppid()).open("a") as out:
            out.write("".join(lines))
