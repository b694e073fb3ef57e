"""bench/chat_fanout.py runs (tiny phases: two real chat processes on a migrated database
and the real Redis) and its figures are the ones it claims: so the benchmark cannot rot
between `make bench` runs."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from bench import chat_fanout
from tests.servers import Servers


def test_chat_fanout_bench_smoke(
    migrated_db: Callable[[str], str], servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = migrated_db("chat")
    argv = ["--sockets", "6", "--seconds", "0.5", "--idle", "20", "--drain", "5"]
    figures = chat_fanout.main([*argv, "--dsn", dsn, "--redis", servers.redis_url])

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
