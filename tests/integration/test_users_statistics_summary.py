"""The users-list statistics summary (0006_user_statistics, ADR 0023) equals the scan: per
group and through the generated queries for every filter, after randomized concurrent
writes (inserts, updates that move users between groups or change an extreme, soft
deletes, restores, hard deletes, multi-statement transactions) and after every migration
(applied one at a time from an empty database, then 0006 rolled back and applied again)."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import uuid
from collections.abc import Callable
from dataclasses import astuple
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from services.users.db import users as q
from services.users.db.models import UserRole
from tests import pg
from tests.servers import DatabaseFactory
from tools.migrations import migrate

DEPARTMENTS = [uuid.UUID(int=n) for n in (11, 12, 13)]  # and NULL
ROLES = [r.value for r in UserRole]
# group by group: what the summary holds against what a scan of the live users computes
GROUPS_DIFFER = """
WITH scan AS (
    SELECT role, department_id, verified, count(*) AS total, count(age) AS age_count,
           coalesce(sum(age), 0) AS age_sum, min(age) AS age_min, max(age) AS age_max,
           count(salary) AS salary_count, coalesce(sum(salary), 0) AS salary_sum,
           min(salary) AS salary_min, max(salary) AS salary_max
    FROM users WHERE deleted_at IS NULL GROUP BY role, department_id, verified
), kept AS (
    SELECT role, department_id, verified, total, age_count, age_sum, age_min, age_max,
           salary_count, salary_sum, salary_min, salary_max
    FROM user_statistics WHERE total <> 0 OR age_min IS NOT NULL OR salary_min IS NOT NULL
       OR age_count <> 0 OR salary_count <> 0 OR age_sum <> 0 OR salary_sum <> 0
)
SELECT count(*)
FROM ((TABLE scan EXCEPT ALL TABLE kept) UNION ALL (TABLE kept EXCEPT ALL TABLE scan)) d
"""
INSERT = """
INSERT INTO users (email, password_hash, first_name, last_name, phone_number, role, verified,
                   department_id, age, salary)
SELECT 'u' || gen_random_uuid() || '@example.com', 'x', 'First', 'Last', '+1 555 0100',
       r.role::user_role, r.verified, r.department_id, r.age, r.salary
FROM unnest($1::text[], $2::boolean[], $3::uuid[], $4::integer[], $5::numeric[])
     AS r(role, verified, department_id, age, salary)
"""


def random_user(rng: random.Random) -> tuple[str, bool, uuid.UUID | None, int | None, Any]:
    """Few distinct values, so removals often hit a group's extreme."""
    age = None if rng.random() < 0.15 else rng.randint(18, 25)
    salary = None if rng.random() < 0.15 else Decimal(rng.randint(1000, 1010)) / 4
    department = rng.choice([*DEPARTMENTS, None])
    return rng.choice(ROLES), rng.random() < 0.5, department, age, salary


async def insert(conn: asyncpg.Connection, users: list[tuple[Any, ...]]) -> None:
    await conn.execute(INSERT, *[list(column) for column in zip(*users, strict=True)])


async def one_write(conn: asyncpg.Connection, rng: random.Random) -> None:
    """One random write statement touching a random live or deleted user (or a few)."""
    kind = rng.randrange(8)
    pick = "(SELECT id FROM users ORDER BY random() LIMIT $1)"
    many = rng.randint(1, 3)
    if kind == 0:
        await insert(conn, [random_user(rng) for _ in range(many)])
    elif kind == 1:  # move between groups
        role, verified, department, _, _ = random_user(rng)
        await conn.execute(
            f"UPDATE users SET role = $2::user_role, verified = $3, department_id = $4 "
            f"WHERE id IN {pick}",
            many,
            role,
            verified,
            department,
        )
    elif kind == 2:  # a new age/salary: often the group's extreme, or NULL
        _, _, _, age, salary = random_user(rng)
        await conn.execute(
            f"UPDATE users SET age = $2, salary = $3 WHERE id IN {pick}", many, age, salary
        )
    elif kind == 3:  # soft delete, as the API's DELETE does
        await conn.execute(
            f"UPDATE users SET disabled_at = now(), deleted_at = now() "
            f"WHERE deleted_at IS NULL AND id IN {pick}",
            many,
        )
    elif kind == 4:  # restore
        await conn.execute(
            "UPDATE users SET deleted_at = NULL, disabled_at = NULL WHERE id IN "
            "(SELECT id FROM users WHERE deleted_at IS NOT NULL ORDER BY random() LIMIT $1)",
            many,
        )
    elif kind == 5:
        await conn.execute(f"DELETE FROM users WHERE id IN {pick}", many)
    elif kind == 6:  # a change the summary ignores (no group, age or salary change)
        await conn.execute(f"UPDATE users SET first_name = 'Renamed' WHERE id IN {pick}", many)
    else:  # two statements in one transaction
        async with conn.transaction():
            await one_write(conn, rng)
            await one_write(conn, rng)


async def writer(dsn: str, seed: int, writes: int) -> int:
    """`writes` random transactions; returns how many the server aborted (deadlocks between
    random multi-row writes are the server's answer, the summary must stay exact anyway)."""
    rng = random.Random(seed)
    aborted = 0
    async with pg.connected(dsn) as conn:
        for _ in range(writes):
            try:
                await one_write(conn, rng)
            except asyncpg.DeadlockDetectedError:
                aborted += 1
    return aborted


async def assert_summary_is_the_scan(dsn: str, context: str) -> None:
    async with pg.connected(dsn) as conn:
        assert await conn.fetchval(GROUPS_DIFFER) == 0, f"groups differ ({context})"
        departments = [None, *DEPARTMENTS, uuid.UUID(int=99)]
        roles = [None, *UserRole]
        for role, department, verified in itertools.product(
            roles, departments, [None, True, False]
        ):
            filters = {"role": role, "department_id": department, "verified": verified}
            scan = await q.user_statistics(conn, **filters, search=None)
            summary = await q.user_statistics_summary(conn, **filters)
            assert scan is not None
            assert summary is not None
            assert astuple(summary) == astuple(scan), f"{filters} ({context})"


async def test_summary_equals_scan_under_concurrent_writes(
    migrated_db: Callable[[str], str],
) -> None:
    dsn = migrated_db("users")
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    async with pg.connected(dsn) as conn:
        await insert(conn, [random_user(rng) for _ in range(300)])
    aborted = await asyncio.gather(*(writer(dsn, seed + n, 40) for n in range(1, 9)))
    assert sum(aborted) < 8 * 40, f"seed {seed}: every write aborted"
    await assert_summary_is_the_scan(dsn, f"seed {seed}")


@pytest.fixture
def empty_users_db(databases: DatabaseFactory) -> str:
    return databases.create("users_steps", "postgresql")


async def test_summary_equals_scan_after_every_migration(empty_users_db: str) -> None:
    dsn = empty_users_db
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    steps: list[str] = []
    while applied := await asyncio.to_thread(migrate.up, "users", dsn, 1):
        steps += applied
        async with pg.connected(dsn) as conn:
            await insert(conn, [random_user(rng) for _ in range(20)])
            await writer_on(conn, rng, 10)
            summary = await conn.fetchval("SELECT to_regclass('user_statistics') IS NOT NULL")
        if summary:
            await assert_summary_is_the_scan(dsn, f"after {applied[0]}")
    assert "0006_user_statistics" in steps
    # rolled back to before the summary, written to, applied again: the backfill is exact
    while (await asyncio.to_thread(migrate.down, "users", dsn, 1))[0] != "0006_user_statistics":
        pass
    async with pg.connected(dsn) as conn:
        await writer_on(conn, rng, 20)
    await asyncio.to_thread(migrate.up, "users", dsn)
    await assert_summary_is_the_scan(dsn, "after 0006 again")


async def writer_on(conn: asyncpg.Connection, rng: random.Random, writes: int) -> None:
    for _ in range(writes):
        await one_write(conn, rng)
