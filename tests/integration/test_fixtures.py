"""Two test runs in parallel share neither databases nor Redis keys, and clean up after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from tests.servers import Servers
from tools.local.dbadmin import database_exists
from tools.time_scale import scaled

# Outside tests/integration (whose conftest imports every service) and without the plugins
# the probe does not use: each run starts in ~0.7 s instead of ~2 s (more under load).
PROBE = Path(__file__).parents[1] / "isolation_probe.py"
LEAN = [
    f"-pno:{name}" for name in ("cacheprovider", "schemathesis", "hypothesispytest", "randomly")
]


def test_parallel_runs_are_isolated(tmp_path: Path, servers: Servers, redis_prefix: str) -> None:
    barrier = f"{redis_prefix}probe-barrier"  # this run's key: the probes meet there
    runs = []
    for i in range(2):
        out = tmp_path / f"probe{i}.json"
        env = {**os.environ, "PROBE_OUT": str(out), "PROBE_BARRIER": barrier}
        cmd = [sys.executable, "-m", "pytest", "-q", *LEAN, str(PROBE)]
        runs.append((subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True), out))
    results = []
    try:
        for proc, out in runs:
            stdout, _ = proc.communicate(timeout=scaled(120))
            assert proc.returncode == 0, stdout
            results.append(json.loads(out.read_text()))
    finally:
        client = redis.Redis.from_url(servers.redis_url)
        client.delete(barrier)
        client.close()
    first, second = results
    assert first["dsn"] != second["dsn"]
    assert first["prefix"] != second["prefix"]
    for result in results:
        assert not database_exists(result["dsn"]), f"{result['dsn']} was not dropped"
