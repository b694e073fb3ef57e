"""The bounded failover drill (make test): the HA tier of tools/ha_tier.py on free ports;
the release drill's story load through NGINX (tests/reliability/failover_stories.py) while
the PostgreSQL primary's postmaster is SIGKILLed, then the primary frozen past its TTL:
only 503 + Retry-After while a primary is elected, writes again within the drill's limit,
every invariant held; and points' MariaDB primary lost under a direct writer.
`make failover-drill` runs every fault."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.reliability.failover_stories import run as run_stories
from tools.failover_drill import run
from tools.ha_faults import FAULT_LIMIT, RECOVERY_LIMIT
from tools.ha_postgres import START_TIMEOUT

STORIES = 4  # whole stories before the kill, and after the recovery


def test_the_points_primary_lost_and_its_replica_promoted_loses_nothing() -> None:
    """MariaDB: semi-synchronous replication (AFTER_SYNC) and tools/ha_mariadb.py's
    promotion, run at once by the drill: writes resume on the replica with every
    acknowledged one there."""
    with tempfile.TemporaryDirectory(prefix="fixup-failover-") as directory:
        Path(directory).chmod(0o755)  # the mysql user runs the servers
        (result,) = run(Path(directory), ["mariadb"])
    assert result.lost == []
    assert result.duplicated == []
    assert 0 <= result.recovery_seconds < RECOVERY_LIMIT
    assert "replica promoted" in result.fault


# the tier's start and seed, then two faults each bounded by the drill's own limit
@pytest.mark.timeout(2 * START_TIMEOUT + 2 * FAULT_LIMIT)
def test_a_primary_killed_then_frozen_under_the_story_load_fails_nothing_but_503s() -> None:
    """The release drill's stories through NGINX (two replicas of every HTTP service) on
    the HA tier while the primary's postmaster is SIGKILLed, then, on the settled tier,
    the whole primary member is frozen past its leader key's TTL and resumed: only 503 +
    Retry-After while a primary is elected, writes again within the limit, no
    acknowledged write lost when the frozen member wakes (it follows the promoted
    standby), every invariant held. One tier for both: its start is most of the time."""
    killed, frozen = run_stories(["postmaster", "freeze"], STORIES)
    for result in (killed, frozen):
        assert result.failed == {}, result.lines()
        assert all(result.held.values()), result.lines()
        assert 0 <= result.recovery_seconds < RECOVERY_LIMIT, result.lines()
    assert any(name.startswith("the old primary pg") for name in frozen.held), frozen.lines()
