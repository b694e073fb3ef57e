"""bench/users_auth.py runs (tiny phases, a real users process on a migrated database) and
its figures are the ones it claims: so the benchmark cannot rot between `make bench` runs."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from bench import users_auth
from services.users.settings import UsersSettings


def test_users_auth_bench_smoke(
    migrated_db: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = migrated_db("users")
    argv = ["--seconds", "0.5", "--rounds", "1", "--concurrency", "2", "--hashes", "3",
            "--dsn", dsn]  # fmt: skip
    figures = users_auth.main(argv)

    defaults = UsersSettings.model_fields
    assert figures["argon2"] == {
        "time_cost": defaults["argon2_time_cost"].default,
        "memory_kib": defaults["argon2_memory_cost"].default,
        "parallelism": defaults["argon2_parallelism"].default,
    }
    assert figures["argon2"]["memory_kib"] >= 19 * 1024  # OWASP's floor for argon2id
    assert figures["hash_ms_median"] >= figures["hash_ms_min"] > 0
    idle_samples, storm_samples = figures["health_samples"]
    assert idle_samples > 0
    assert storm_samples > 0
    assert math.isfinite(figures["health_ratio"])
    assert figures["priority"] == defaults["argon2_priority"].default == "nice"
    assert set(figures["by_priority"]) == {"idle", "nice"}
    assert figures["by_priority"]["nice"]["health_ratio"] == figures["health_ratio"]
    for side in figures["by_priority"].values():
        assert math.isfinite(side["health_ratio"])
        assert side["login_per_s"] > 0
    assert figures["failed"] == 0
    assert figures["login_per_s"] > 0
    # a refresh is one SHA-256 and one transaction, a login one argon2id check
    assert figures["refresh_per_s"] > figures["login_per_s"]
    out = capsys.readouterr().out
    assert "/health p99 login storm" in out
    assert "ARGON2_PRIORITY=idle" in out
    assert "ratio to login" in out
