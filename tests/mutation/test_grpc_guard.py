"""Under mutmut (MUTANT_UNDER_TEST set) a test that starts a gRPC server fails, naming the
reason, instead of hanging in a forked worker: mutmut's stats run then stops loudly rather
than counting every mutant of the module as killed by a timeout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import GRPC_UNDER_MUTMUT
from tools.checks import mutation
from tools.time_scale import scaled

PROBE = """
import grpc.aio


async def test_starts_a_grpc_server() -> None:
    server = grpc.aio.server()
    await server.stop(None)
"""


def run_probe(tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    probe = mutation.ROOT / "tests" / "mutation" / f"test_probe_{os.getpid()}_{tmp.name}.py"
    probe.write_text(PROBE)
    try:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(probe)],
            cwd=mutation.ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=scaled(120),
            check=False,
        )
    finally:
        probe.unlink()


def test_a_grpc_server_is_refused_under_mutmut_only(tmp_path: Path) -> None:
    plain = run_probe(tmp_path)
    assert plain.returncode == 0, plain.stdout[-2000:]
    under = run_probe(tmp_path, MUTANT_UNDER_TEST="stats")
    assert under.returncode == 1, under.stdout[-2000:]
    assert GRPC_UNDER_MUTMUT[:60] in under.stdout
