"""`python -m tools.local.seed` loads the demo data of docs/api.md ("users") into fresh databases,
idempotently."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import psycopg
import pytest

from lib import registry
from lib.auth import passwords
from tests.servers import DatabaseFactory
from tools.local import seed
from tools.local.databases import database_name
from tools.local.dbadmin import mysql_connect, psycopg_dsn

ROOT = Path(__file__).resolve().parents[2]

# name -> points, from the seed table of docs/api.md ("users")
POINTS = {
    "Alice Johnson": 23,
    "Bob Smith": 43,
    "Charlie Brown": 28,
    "Diana Prince": 83,
    "Ethan Hunt": 13,
    "Fiona Gallagher": 33,
    "George Costanza": 93,
    "Hannah Baker": 13,
    "Ian Malcolm": 73,
}


@pytest.fixture(scope="module")
def seeded(databases: DatabaseFactory) -> Iterator[dict[str, str]]:
    """Fresh databases, seeded twice; the DSNs by db name."""
    dsns = {
        s.database: databases.create(f"seed_{s.database}", s.engine)
        for s in registry.built_services()
    }
    with pytest.MonkeyPatch.context() as mp:
        for db, dsn in dsns.items():
            mp.setenv(f"{db.upper()}_DATABASE_URL", dsn)
        mp.setenv("ARGON2_TIME_COST", "1")
        mp.setenv("ARGON2_MEMORY_COST", "1024")
        mp.setenv("ARGON2_PARALLELISM", "1")
        mp.setenv("SEED_ADMIN_PASSWORD", "admin-secret-1")
        mp.setenv("SEED_USER_PASSWORD", "user-secret-1")
        passwords.hasher.cache_clear()
        assert seed.main() == 0
        assert seed.main() == 0
        yield dsns
    passwords.hasher.cache_clear()


def pg_rows(dsn: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(psycopg_dsn(dsn)) as conn:
        return conn.execute(query).fetchall()


def test_running_twice_inserts_nothing_new(
    seeded: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for db, dsn in seeded.items():
        monkeypatch.setenv(f"{db.upper()}_DATABASE_URL", dsn)
    assert seed.main() == 0
    lines = capsys.readouterr().out.splitlines()
    with_data = [db for db, _, _ in seed.SEEDERS]
    without = [s.database for s in registry.built_services() if s.database not in with_data]
    assert [line.split(":")[0] for line in lines] == with_data + without
    assert all(", 0 inserted," in line for line in lines[: len(with_data)]), lines
    assert lines[len(with_data) :] == [f"{db}: migrated, no seed data" for db in without]


def test_every_started_service_has_its_tables(seeded: dict[str, str]) -> None:
    """`make run` starts orders and chat too: the seed migrates their databases (a fresh
    machine had none, and both services waited for them forever)."""
    for db, table in (("orders", "orders"), ("chat", "messages"), ("catalog", "services")):
        assert pg_rows(seeded[db], f"SELECT count(*) FROM {table}")[0][0] >= 0
        applied = pg_rows(seeded[db], "SELECT count(*) FROM _yoyo_migration")[0][0]
        ups = [p for p in (ROOT / "migrations" / db).glob("*.sql") if ".rollback." not in p.name]
        assert applied == len(ups), db


def test_departments(seeded: dict[str, str]) -> None:
    rows = pg_rows(seeded["departments"], "SELECT name, address FROM departments ORDER BY name")
    assert rows == [
        ("Finance", "456 Elm St, Springfield"),
        ("Human Resources", "123 Main St, Springfield"),
        ("IT Support", "789 Oak St, Springfield"),
    ]


def test_users_and_the_admin_password(seeded: dict[str, str]) -> None:
    rows = pg_rows(
        seeded["users"],
        "SELECT role::text, count(*), bool_and(verified) FROM users GROUP BY role ORDER BY role",
    )
    assert rows == [("ADMIN", 1, True), ("CUSTOMER", 9, True)]
    ((admin_hash, customer_hash),) = pg_rows(
        seeded["users"],
        "SELECT (SELECT password_hash FROM users WHERE email = 'admin@fixup.test'),"
        " (SELECT password_hash FROM users WHERE email = 'george.costanza@example.com')",
    )
    assert isinstance(admin_hash, str)
    assert isinstance(customer_hash, str)
    assert admin_hash.startswith("$argon2id$")
    assert passwords.verify_password(admin_hash, "admin-secret-1")
    assert not passwords.verify_password(admin_hash, "user-secret-1")
    assert passwords.verify_password(customer_hash, "user-secret-1")


def test_statistics_over_the_nine_customers(seeded: dict[str, str]) -> None:
    ((count, min_age, max_age, avg_age, min_salary, max_salary, avg_salary),) = pg_rows(
        seeded["users"],
        "SELECT count(*), min(age), max(age), avg(age), min(salary), max(salary), avg(salary)"
        " FROM users WHERE role = 'CUSTOMER'",
    )
    cents = Decimal("0.01")
    assert (count, min_age, max_age) == (9, 22, 40)
    assert isinstance(avg_age, Decimal)
    assert isinstance(avg_salary, Decimal)
    assert avg_age.quantize(cents, ROUND_HALF_UP) == Decimal("31.22")
    assert (min_salary, max_salary) == (Decimal("48000.00"), Decimal("90000.00"))
    assert avg_salary.quantize(cents, ROUND_HALF_UP) == Decimal("68333.33")


def test_points_match_api_md(seeded: dict[str, str]) -> None:
    names = {
        str(user_id): f"{first} {last}"
        for user_id, first, last in pg_rows(
            seeded["users"], "SELECT id, first_name, last_name FROM users WHERE role = 'CUSTOMER'"
        )
    }
    dsn = seeded["points"]
    with mysql_connect(dsn, database=database_name(dsn)) as conn, conn.cursor() as cur:
        cur.execute("SELECT user_id, points FROM user_points")
        points = {names[user_id]: value for user_id, value in cur.fetchall()}
        cur.execute("SELECT count(*), sum(delta) FROM points_ledger")
        ledger = cur.fetchone()
    assert points == POINTS
    assert points["George Costanza"] == 93
    assert ledger == (9, sum(POINTS.values()))


def test_catalog(seeded: dict[str, str]) -> None:
    ((types, categories, subcategories, services, non_usd),) = pg_rows(
        seeded["catalog"],
        "SELECT (SELECT count(*) FROM category_types), (SELECT count(*) FROM categories),"
        " (SELECT count(*) FROM subcategories), (SELECT count(*) FROM services),"
        " (SELECT count(*) FROM services WHERE currency <> 'USD')",
    )
    assert (types, categories, non_usd) == (2, 3, 0)
    assert subcategories == len(seed.SUBCATEGORIES) >= 3
    assert services == len(seed.CATALOG_SERVICES) >= 6
