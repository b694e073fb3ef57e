"""Under mutmut a pytest session's migrated databases are kept for the next session
(tools/checks/mutant_databases.py, ADR 0017); a normal session still drops its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.servers import Servers
from tools.checks import mutant_databases, mutation
from tools.local.dbadmin import database_exists
from tools.time_scale import scaled

PROBE = Path(__file__).parents[1] / "mutant_db_probe.py"
# slots and databases of this test's own: a mutmut run on the same servers takes none of them
SCOPE = "probe" + "".join(chr(ord("a") + int(d)) for d in str(os.getpid()))
LEAN = [
    f"-pno:{name}" for name in ("cacheprovider", "schemathesis", "hypothesispytest", "randomly")
]


def probe(tmp: Path, **env: str) -> dict[str, Any]:
    env = {mutant_databases.SCOPE_ENV: SCOPE, **env}
    out = tmp / f"probe{len(list(tmp.iterdir()))}.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *LEAN, str(PROBE)],
        cwd=mutation.ROOT,
        env={**os.environ, "PROBE_OUT": str(out), **env},
        capture_output=True,
        text=True,
        timeout=scaled(120.0),  # a pytest session of one probe: seconds at load 3
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def slot_of(dsn: str) -> int:
    matched = mutant_databases.NAME.match(dsn.rsplit("/", 1)[1])
    assert matched is not None, dsn
    assert matched[2] == SCOPE
    return int(matched[1])


def test_a_session_under_mutmut_gets_the_last_ones_database(
    tmp_path: Path, servers: Servers
) -> None:
    first = probe(tmp_path, MUTANT_UNDER_TEST="probe")
    try:
        assert database_exists(first["dsn"]), "a session under mutmut dropped its database"
        second = probe(tmp_path, MUTANT_UNDER_TEST="probe")
        assert second["dsn"] == first["dsn"]  # the same one, migrated, with the rows
        assert second["sessions_before"] == first["sessions_before"] + 1
        assert database_exists(second["dsn"])
    finally:
        dropped = mutant_databases.drop_unclaimed(
            servers.pg_dsn, servers.mysql_dsn, slots={slot_of(first["dsn"])}, scope=SCOPE
        )
    assert first["dsn"] in dropped
    assert not database_exists(first["dsn"])
    plain = probe(tmp_path)  # a normal session: a database of its own, dropped at its end
    assert not plain["dsn"].rsplit("/", 1)[1].startswith(mutant_databases.PREFIX)
    assert plain["sessions_before"] == 0
    assert not database_exists(plain["dsn"])


def test_two_sessions_at_once_never_share_a_slot(servers: Servers) -> None:
    one = mutant_databases.MutantDatabases(servers.pg_dsn, servers.mysql_dsn, SCOPE)
    two = mutant_databases.MutantDatabases(servers.pg_dsn, servers.mysql_dsn, SCOPE)
    try:
        assert one.slot != two.slot
        assert one.dsn("orders") != two.dsn("orders")
        assert one.dsn("orders") != one.dsn("orders")  # a second database of one session
        assert {one.slot, two.slot} == {0, 1}  # the lowest free ones (of this test's scope)
        one.close()
        again = mutant_databases.MutantDatabases(servers.pg_dsn, servers.mysql_dsn, SCOPE)
        assert again.slot == one.slot  # given back: its databases serve the next session
        again.close()
    finally:
        one.close()
        two.close()
    # a slot held by a session is never dropped
    held = mutant_databases.MutantDatabases(servers.pg_dsn, servers.mysql_dsn, SCOPE)
    try:
        dsn = held.migrated("points")
        assert dsn not in mutant_databases.drop_unclaimed(
            servers.pg_dsn, servers.mysql_dsn, slots={held.slot}, scope=SCOPE
        )
        assert database_exists(dsn)
    finally:
        held.close()
    assert mutant_databases.drop_unclaimed(
        servers.pg_dsn, servers.mysql_dsn, slots={held.slot}, scope=SCOPE
    ) == [dsn]
