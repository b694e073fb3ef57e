"""Follow a log file like `tail -F`: across rename-and-recreate and truncation.

Start: an access log that already exists is read from its END (`from_start=False`, the
default): the exporter's counters start at 0 like any restarted process's, and replaying
old lines would put past traffic into the current rate. A file that appears later (first
start of nginx, or the new file after a rotation) is read from its beginning.

Each `poll()` returns the complete lines written since the last one:
- rename (logrotate's default; then `nginx -s reopen` / USR1): the path's inode changes.
  The old file is read to its end first (nginx may still write to it until it reopens),
  then the new one from its start. A path that is missing for a while keeps the old file.
- truncate (`copytruncate`, `: > access.log`): the size drops below our offset -> read
  again from 0. Lines written between the copy and the truncation are lost, and a file
  that grows back past our offset between two polls is not noticed: use rename.
A trailing partial line is kept until its newline arrives.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


class Follower:
    def __init__(self, path: Path, from_start: bool = False, chunk: int = 1 << 20) -> None:
        self.path = path
        self.chunk = chunk
        self._at_end_first = not from_start
        self._file: BinaryIO | None = None
        self._identity: tuple[int, int] = (0, 0)
        self._offset = 0
        self._partial = b""
        self.rotations = 0
        self.truncations = 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self, at_end: bool) -> bool:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return False
        stat = os.fstat(handle.fileno())
        self._file, self._identity = handle, (stat.st_dev, stat.st_ino)
        self._offset = handle.seek(0, os.SEEK_END) if at_end else 0
        self._partial = b""
        return True

    def _read(self) -> tuple[list[str], bool]:
        """-> complete lines, and whether the file was drained (less than a chunk read)."""
        assert self._file is not None
        data = self._file.read(self.chunk)
        self._offset += len(data)
        if not data:
            return [], True
        *complete, self._partial = (self._partial + data).split(b"\n")
        lines = [raw.decode("utf-8", "replace") for raw in complete]
        return lines, len(data) < self.chunk

    def poll(self) -> list[str]:
        if self._file is None:
            at_end, self._at_end_first = self._at_end_first, False
            if not self._open(at_end):
                return []
        lines, drained = self._read()
        if not drained:
            return lines  # more to read first: rotation is checked once caught up
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return lines  # renamed away and not yet recreated: stay on the old file
        if (stat.st_dev, stat.st_ino) != self._identity:
            more, _ = self._read()  # the last lines written before nginx reopened
            lines += more
            if self._partial:
                lines.append(self._partial.decode("utf-8", "replace"))
            self.close()
            self.rotations += 1
            if self._open(at_end=False):
                more, _ = self._read()
                lines += more
        elif stat.st_size < self._offset:
            assert self._file is not None
            self._file.seek(0)
            self._offset, self._partial = 0, b""
            self.truncations += 1
            more, _ = self._read()
            lines += more
        return lines
