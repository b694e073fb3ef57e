"""The bounded failover drill (make test): the HA tier of tools/ha_tier.py on free ports, a
writer committing through HAProxy, the primary's postmaster SIGKILLed; every acknowledged
write is present exactly once, writes flow again within the drill's limit and no write
hangs past its bounds. `make failover-drill` adds the loss of a whole member."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tools.failover_drill import CONNECT_TIMEOUT, RECOVERY_LIMIT, STATEMENT_TIMEOUT, run


def test_a_primary_killed_loses_no_acknowledged_write() -> None:
    with tempfile.TemporaryDirectory(prefix="fixup-failover-") as directory:
        Path(directory).chmod(0o755)  # the postgres user runs the members
        (result,) = run(Path(directory), ["postmaster"])
    assert result.lost == []
    assert result.duplicated == []
    assert 0 <= result.recovery_seconds < RECOVERY_LIMIT
    assert result.longest_failure <= STATEMENT_TIMEOUT + CONNECT_TIMEOUT + 1
    assert "postmaster SIGKILLed" in result.fault


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
