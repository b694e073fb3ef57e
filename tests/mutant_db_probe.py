"""Run by mutation/test_mutant_databases.py as a pytest session of its own, with and
without MUTANT_UNDER_TEST; not collected on its own (not named test_*)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from tools.local.dbadmin import mysql_connect


def test_probe(migrated_db: Callable[[str], str]) -> None:
    # MariaDB: on PostgreSQL, DROP DATABASE waits for two cluster-wide checkpoints, seconds
    # each while the rest of the suite writes; what is proven here is the same on both.
    dsn = migrated_db("points")
    name = dsn.rsplit("/", 1)[1]
    with mysql_connect(dsn, database=name) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM user_points")  # migrated: the table is there
        cur.execute("CREATE TABLE IF NOT EXISTS probe_sessions (pid INT NOT NULL)")
        cur.execute("SELECT count(*) FROM probe_sessions")
        (before,) = cur.fetchone() or (None,)
        cur.execute("INSERT INTO probe_sessions (pid) VALUES (%s)", (os.getpid(),))
    with open(os.environ["PROBE_OUT"], "w") as out:
        json.dump({"dsn": dsn, "sessions_before": before}, out)
