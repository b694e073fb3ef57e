"""Migrated databases kept from one mutant's pytest session to the next (ADR 0017,
docs/mutation.md).

Under mutmut (`MUTANT_UNDER_TEST` set) the `migrated_db` fixture takes its databases from
here instead of creating, migrating and dropping its own: a session claims a slot (the
lowest PostgreSQL advisory lock it can take, held until it ends), and its n-th
`migrated_db(label)` is `fixup_mut_s<slot>_<label>_<n>_<digest of the migrations>`,
migrated by the first session that asks and never dropped by one; `drop_unclaimed` drops
those of the slots no session holds. `FIXUP_MUTANT_DB_SCOPE` (lower-case letters) gives a
run slots of its own (`fixup_mut_s<slot><scope>_...`).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import re
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg

from tools.local.databases import get_database, with_database
from tools.local.dbadmin import drop_database, mysql_connect, psycopg_dsn
from tools.migrations import migrate

PREFIX = "fixup_mut_"
LOCKS = 0x6D757464  # the advisory lock space of the slots ("mutd"), the slot is the key
NAME = re.compile(rf"^{PREFIX}s(\d+)([a-z]*)_[a-z0-9_]+_\d+_[0-9a-f]{{8}}$")
SCOPE_ENV = "FIXUP_MUTANT_DB_SCOPE"
SCOPE = re.compile(r"^[a-z]{0,16}$")


def scope_from_env() -> str:
    scope = os.environ.get(SCOPE_ENV, "")
    if not SCOPE.match(scope):
        raise ValueError(f"{SCOPE_ENV}={scope!r} must be up to 16 lower-case letters")
    return scope


def lock_space(scope: str) -> int:
    """The advisory lock space of a scope's slots (a 31-bit key: PostgreSQL's int4)."""
    return LOCKS ^ (zlib.crc32(scope.encode()) & 0x0FFFFFFF) if scope else LOCKS


@functools.cache
def fingerprint(db: str) -> str:
    """8 hex digits of the database's migration files (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(migrate.migrations_dir(db).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:8]


def took(conn: psycopg.Connection[tuple[object, ...]], space: int, slot: int) -> bool:
    """Whether `conn` took the slot's lock (it keeps it until it closes)."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", (space, slot)).fetchone()
    return row is not None and bool(row[0])


def claim_slot(conn: psycopg.Connection[tuple[object, ...]], space: int) -> int:
    """The lowest slot whose lock `conn` takes."""
    return next(slot for slot in itertools.count() if took(conn, space, slot))


class MutantDatabases:
    """One session's slot and its migrated databases; `close` gives the slot back."""

    def __init__(self, pg_dsn: str, mysql_dsn: str, scope: str = "") -> None:
        self.servers = {"postgresql": pg_dsn, "mysql": mysql_dsn}
        self.scope = scope
        self._lock = psycopg.connect(psycopg_dsn(pg_dsn), autocommit=True)
        self.slot = claim_slot(self._lock, lock_space(scope))
        self._asked: Counter[str] = Counter()

    def dsn(self, db: str) -> str:
        """The DSN of this session's next `db` database (not created here)."""
        self._asked[db] += 1
        slot = f"s{self.slot}{self.scope}"
        name = f"{PREFIX}{slot}_{db}_{self._asked[db]}_{fingerprint(db)}"
        return with_database(self.servers[get_database(db).engine], name)

    def migrated(self, db: str) -> str:
        """This session's next `db` database, at the head migration."""
        dsn = self.dsn(db)
        try:
            migrate.up(db, dsn)  # creates it when missing; applies only what is pending
        except Exception:
            drop_database(dsn)  # a migration left half done by a killed session (MariaDB)
            migrate.up(db, dsn)
        return dsn

    def close(self) -> None:
        self._lock.close()


def kept(pg_dsn: str, mysql_dsn: str, scope: str = "") -> dict[int, list[str]]:
    """The scope's kept databases on both servers, by slot (as DSNs)."""
    like = PREFIX.replace("_", r"\_") + "%"
    names: list[tuple[str, str]] = []
    with psycopg.connect(psycopg_dsn(pg_dsn)) as pg:
        rows = pg.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (like,))
        names += [(pg_dsn, row[0]) for row in rows.fetchall()]
    with mysql_connect(mysql_dsn) as my, my.cursor() as cur:
        cur.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
            (like,),
        )
        names += [(mysql_dsn, row[0]) for row in cur.fetchall()]
    by_slot: dict[int, list[str]] = {}
    for server, name in names:
        if (matched := NAME.match(name)) and matched[2] == scope:
            by_slot.setdefault(int(matched[1]), []).append(with_database(server, name))
    return by_slot


def drop_unclaimed(
    pg_dsn: str, mysql_dsn: str, slots: set[int] | None = None, scope: str = ""
) -> list[str]:
    """Drop the scope's kept databases of every slot no session holds (of `slots` when given),
    holding those slots' locks meanwhile; returns the DSNs dropped. The drops go together:
    PostgreSQL's wait for checkpoints is then shared."""
    found = kept(pg_dsn, mysql_dsn, scope)
    with psycopg.connect(psycopg_dsn(pg_dsn), autocommit=True) as conn:
        dsns: list[str] = []
        for slot in sorted(found if slots is None else found.keys() & slots):
            if took(conn, lock_space(scope), slot):  # else a session still going uses them
                dsns += found[slot]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(drop_database, dsns))
    return dsns
