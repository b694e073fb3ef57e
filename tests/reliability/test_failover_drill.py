"""The bounded failover drill (make test): the HA tier of tools/ha/ha_tier.py on free ports;
the release drill's story load through NGINX (tests/reliability/failover_stories.py) while
the PostgreSQL primary's postmaster is SIGKILLed, then the primary frozen past its TTL:
only 503 + Retry-After while a primary is elected, writes again within the drill's limit,
every invariant held; and points' MariaDB primary SIGKILLed, or frozen then woken, under a
points process awarding over gRPC, failed over by the pair's watcher with no operator step.
`make failover-drill` runs every fault."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.reliability.failover_stories import run as run_stories
from tools.drills.failover_drill import report, run
from tools.drills.failover_mariadb import AWARD_BACK_LIMIT, REJOIN_LIMIT
from tools.drills.ha_faults import FAULT_LIMIT, RECOVERY_LIMIT
from tools.ha.ha_mariadb import START_TIMEOUT as MARIA_START
from tools.ha.ha_postgres import START_TIMEOUT

STORIES = 4  # whole stories before the kill, and after the recovery


# the pair, its HAProxy and watcher, points; the fault (its warm-up, the failover, the old
# primary's restart and rejoin, the writes after it)
@pytest.mark.timeout(2 * MARIA_START + AWARD_BACK_LIMIT + REJOIN_LIMIT + 2 * RECOVERY_LIMIT)
@pytest.mark.parametrize("fault", ["mariadb", "mariadb-freeze", "mariadb-replica"])
def test_the_points_primary_lost_fails_over_by_itself_and_loses_no_award(fault: str) -> None:
    """MariaDB under a real points process awarding over gRPC through the pair's HAProxy
    address: the primary SIGKILLed, or frozen until the address has moved and then woken,
    and no operator step. The watcher promotes the replica (semi-sync AFTER_SYNC: its relay
    log applied first), the address follows, points' pool recovers without a restart:
    awards again within AWARD_BACK_LIMIT, every acknowledged award's key exactly once in
    the new primary, and the old primary (a woken one fenced, or SIGKILLed by the watcher
    when it still held commits never acknowledged), started again, follows it read-only
    (the drill's heal fails otherwise, naming it)."""
    with tempfile.TemporaryDirectory(prefix="fixup-failover-") as directory:
        Path(directory).chmod(0o755)  # the mysql user runs the servers
        (result,) = run(Path(directory), [fault])
    assert result.lost == []
    assert result.duplicated == []
    assert 0 < result.recovery_seconds < AWARD_BACK_LIMIT, report(result)
    assert "no operator step" in result.fault


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
