"""bench/tracing_overhead.py runs (one short round, real departments processes before and
after tracing, a real OTLP/gRPC sink) and reports what it claims: spans were exported
when on, and every ratio is a real measurement - so the benchmark cannot rot."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from bench import tracing_overhead


def test_tracing_overhead_bench_smoke(
    migrated_db: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = migrated_db("departments")
    argv = ["--rounds", "1", "--seconds", "1", "--inproc-reps", "1", "--inproc-requests", "20"]
    figures = tracing_overhead.main([*argv, "--dsn", dsn])

    variants = {"before", "off", "on", "on 1/10"}
    assert set(figures["rps"]) == set(figures["cpu_us"]) == variants
    assert all(figures["rps"][v] > 0 for v in variants), figures
    assert all(figures["cpu_us"][v] > 0 for v in variants), figures
    assert set(figures["inproc_us"]) == variants
    keys = ("off/before", "on/off", "on 1/10/off", "inproc off/before", "inproc on/off")
    for key in keys:
        assert math.isfinite(figures[key]), (key, figures)
        assert figures[key] > 0, (key, figures)
    assert figures["exports"] > 0  # "on" really sent spans over OTLP/gRPC
    assert figures["before"].endswith("^")  # the commit before lib/tracing.py existed
    out = capsys.readouterr().out
    assert "off / before" in out
    assert "on 1/10 / off" in out
