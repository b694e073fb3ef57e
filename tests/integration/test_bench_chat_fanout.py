"""bench/chat_fanout.py runs (tiny phases: two real chat processes on a migrated database
and the real Redis) and its figures are the ones it claims: so the benchmark cannot rot
between `make bench` runs."""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from tests.servers import Servers

BENCH = Path(__file__).resolve().parents[2] / "bench" / "chat_fanout.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_chat_fanout", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_chat_fanout_bench_smoke(
    migrated_db: Callable[[str], str], servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = migrated_db("chat")
    argv = ["--sockets", "6", "--seconds", "0.5", "--idle", "20", "--drain", "5"]
    figures = load_bench().main([*argv, "--dsn", dsn, "--redis", servers.redis_url])

    assert figures["sockets"] == 6
    for name in ("two", "one"):
        phase = figures[name]
        assert phase["posted"] > 0
        assert phase["lost"] == 0  # every message reached every socket
        assert phase["delivered"] == phase["posted"] * 6
        assert phase["deliveries_per_s"] > 0
        assert 0 < phase["p50_ms"] <= phase["p99_ms"] < 30_000
    assert math.isfinite(figures["ratio"])
    assert figures["ratio"] > 0
    assert 0 <= figures["idle_kib_per_socket"] < 1024  # 20 sockets: too few to be exact
    out = capsys.readouterr().out
    assert "ratio two/one replicas" in out
    assert "memory per idle socket" in out
