"""bench/orders_flow.py runs (a tiny phase, real processes and NGINX on migrated
databases) and its figures are the ones it claims: so the benchmark cannot rot between
`make bench` runs."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from bench import orders_flow


def test_orders_flow_bench_smoke(
    migrated_db: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    dsns = [migrated_db(db) for db in ("users", "catalog", "orders", "points")]
    argv = ["--seconds", "1", "--rounds", "1", "--concurrency", "2", "--dsns", *dsns]
    figures = orders_flow.main(argv)

    assert figures["failed"] == []
    assert figures["stories"]["nginx"] > 0
    assert figures["stories"]["direct"] > 0
    assert math.isfinite(figures["nginx_to_direct"])
    assert figures["story_ms_p99_nginx"] >= figures["story_ms_p50_nginx"] > 0
    assert math.isclose(sum(figures["step_share"].values()), 1.0)
    for mode in ("nginx", "direct"):
        shares = figures["hop_share"][mode]
        assert math.isclose(sum(shares.values()), 1.0)
        # every story reached catalog and users through orders: each served some of it
        assert shares["orders"] > 0
        assert shares["catalog"] > 0
        assert shares["users"] > 0
    # every completed story (the two warm-ups too) awarded, delivered and applied once
    stories = figures["stories"]["nginx"] + figures["stories"]["direct"] + 2
    assert figures["awards"] == figures["awards_applied_once"] == stories
    assert figures["lag_ms_p99"] >= figures["lag_ms_p50"] > 0
    out = capsys.readouterr().out
    assert "NGINX / direct" in out
    assert "each hop's share" in out
    assert "applied once" in out
