"""The ids the request-id middleware gives requests that bring none (lib/http/middleware.py):
UUID-shaped, version 4, unique within a process and drawn afresh in a forked worker."""

from __future__ import annotations

import os
import uuid

from lib.http.middleware import RequestIds


def test_ids_are_version_4_uuids_and_unique() -> None:
    ids = RequestIds()
    made = [ids.new() for _ in range(1000)]
    assert len(set(made)) == 1000
    for rid in made[:3] + made[-3:]:
        parsed = uuid.UUID(rid)
        assert str(parsed) == rid
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    other = RequestIds()
    assert other.new() != made[0]  # another process (or replica) draws another prefix


def test_a_forked_worker_draws_its_own_prefix() -> None:
    ids = RequestIds()
    parent = ids.new()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, to the parent
        os.write(write, ids.new().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert uuid.UUID(child).version == 4
    assert child[:24] != parent[:24]
