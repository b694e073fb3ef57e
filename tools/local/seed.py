"""Demo data of docs/api.md ("users"), loaded idempotently: `python -m tools.local.seed` (`make
seed`).

Every seed row has a fixed id and is inserted with "on conflict do nothing": a second run
changes nothing, and a changed SEED_*_PASSWORD applies only to users not there yet. Only
the local dev run (`--local-dev`) may give the ADMIN the documented default password.
Each database is migrated first, then seeded in one transaction under its advisory lock
`seed` (tools/local/locks.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

import psycopg

from lib import registry
from lib.auth.passwords import hash_password
from tools.local.databases import database_name, get_database
from tools.local.dbadmin import create_database, mysql_connect, psycopg_dsn
from tools.local.locks import database_lock
from tools.migrations import migrate

DEFAULT_ADMIN_PASSWORD = "fixup-admin-pass"
DEFAULT_USER_PASSWORD = "fixup-user-pass"  # demo data, local use only


class Department(NamedTuple):
    id: str
    name: str
    address: str


class User(NamedTuple):
    id: str
    email: str
    first_name: str
    last_name: str
    phone_number: str
    role: str
    department_id: str | None = None
    age: int | None = None
    salary: Decimal | None = None
    points: int | None = None


class CategoryType(NamedTuple):
    id: str
    name: str


class Category(NamedTuple):
    id: str
    type_id: str
    name: str


class Subcategory(NamedTuple):
    id: str
    category_id: str
    name: str


class CatalogService(NamedTuple):
    id: str
    subcategory_id: str
    name: str
    description: str
    base_price: Decimal
    currency: str = "USD"


HR = "0d000000-0000-4000-8000-000000000001"
FINANCE = "0d000000-0000-4000-8000-000000000002"
IT = "0d000000-0000-4000-8000-000000000003"

DEPARTMENTS = (
    Department(HR, "Human Resources", "123 Main St, Springfield"),
    Department(FINANCE, "Finance", "456 Elm St, Springfield"),
    Department(IT, "IT Support", "789 Oak St, Springfield"),
)

ADMIN = User(
    "0a000000-0000-4000-8000-000000000001",
    "admin@fixup.test",
    "Fixup",
    "Admin",
    "+1 555 0100",
    "ADMIN",
)


def _customer(
    n: int, first: str, last: str, department_id: str, age: int, salary: int, points: int
) -> User:
    return User(
        id=f"0c000000-0000-4000-8000-{n:012d}",
        email=f"{first}.{last}@example.com".lower(),
        first_name=first,
        last_name=last,
        phone_number=f"+1 555 01{n:02d}",
        role="CUSTOMER",
        department_id=department_id,
        age=age,
        salary=Decimal(salary),
        points=points,
    )


CUSTOMERS = (
    _customer(1, "Alice", "Johnson", HR, 30, 60000, 23),
    _customer(2, "Bob", "Smith", HR, 28, 55000, 43),
    _customer(3, "Charlie", "Brown", HR, 35, 70000, 28),
    _customer(4, "Diana", "Prince", FINANCE, 32, 80000, 83),
    _customer(5, "Ethan", "Hunt", FINANCE, 29, 75000, 13),
    _customer(6, "Fiona", "Gallagher", FINANCE, 27, 52000, 33),
    _customer(7, "George", "Costanza", IT, 40, 90000, 93),
    _customer(8, "Hannah", "Baker", IT, 22, 48000, 13),
    _customer(9, "Ian", "Malcolm", IT, 38, 85000, 73),
)

HOME_REPAIR = "0e000000-0000-4000-8000-000000000001"
CLEANING = "0e000000-0000-4000-8000-000000000002"
PLUMBING = "0e000000-0000-4000-8000-000000000011"
ELECTRICAL = "0e000000-0000-4000-8000-000000000012"
HOUSE_CLEANING = "0e000000-0000-4000-8000-000000000013"
LEAKS = "0e000000-0000-4000-8000-000000000021"
PLUMBING_INSTALL = "0e000000-0000-4000-8000-000000000022"
OUTLETS = "0e000000-0000-4000-8000-000000000023"
LIGHTING = "0e000000-0000-4000-8000-000000000024"
REGULAR_CLEANING = "0e000000-0000-4000-8000-000000000025"
DEEP_CLEANING = "0e000000-0000-4000-8000-000000000026"

CATEGORY_TYPES = (
    CategoryType(HOME_REPAIR, "Home Repair"),
    CategoryType(CLEANING, "Cleaning"),
)

CATEGORIES = (
    Category(PLUMBING, HOME_REPAIR, "Plumbing"),
    Category(ELECTRICAL, HOME_REPAIR, "Electrical"),
    Category(HOUSE_CLEANING, CLEANING, "House Cleaning"),
)

SUBCATEGORIES = (
    Subcategory(LEAKS, PLUMBING, "Leaks and Drains"),
    Subcategory(PLUMBING_INSTALL, PLUMBING, "Installation"),
    Subcategory(OUTLETS, ELECTRICAL, "Outlets and Switches"),
    Subcategory(LIGHTING, ELECTRICAL, "Lighting"),
    Subcategory(REGULAR_CLEANING, HOUSE_CLEANING, "Regular Cleaning"),
    Subcategory(DEEP_CLEANING, HOUSE_CLEANING, "Deep Cleaning"),
)

CATALOG_SERVICES = (
    CatalogService(
        "0e000000-0000-4000-8000-000000000031",
        LEAKS,
        "Fix a leaking tap",
        "Diagnose and repair a dripping kitchen or bathroom tap.",
        Decimal("80.00"),
    ),
    CatalogService(
        "0e000000-0000-4000-8000-000000000032",
        PLUMBING_INSTALL,
        "Install a water heater",
        "Remove the old unit and install a new tank water heater.",
        Decimal("450.00"),
    ),
    CatalogService(
        "0e000000-0000-4000-8000-000000000033",
        OUTLETS,
        "Replace a power outlet",
        "Replace a worn or broken wall outlet, up to two per visit.",
        Decimal("95.00"),
    ),
    CatalogService(
        "0e000000-0000-4000-8000-000000000034",
        LIGHTING,
        "Install a ceiling light",
        "Mount and wire a ceiling light fixture you provide.",
        Decimal("120.00"),
    ),
    CatalogService(
        "0e000000-0000-4000-8000-000000000035",
        REGULAR_CLEANING,
        "Apartment cleaning",
        "Two hours of standard cleaning for an apartment up to 80 m2.",
        Decimal("70.00"),
    ),
    CatalogService(
        "0e000000-0000-4000-8000-000000000036",
        DEEP_CLEANING,
        "Move-out deep clean",
        "Top-to-bottom cleaning of an empty home, appliances included.",
        Decimal("250.00"),
    ),
)


def _insert_pg(
    conn: psycopg.Connection[tuple[object, ...]],
    table: str,
    rows: Sequence[tuple[object, ...]],
    columns: Sequence[str] = (),
) -> int:
    """INSERT ... ON CONFLICT DO NOTHING of each row; -> the rows inserted."""
    if not rows:
        return 0
    names = ", ".join(columns or getattr(rows[0], "_fields", ()))
    values = ", ".join(["%s"] * len(rows[0]))
    sql = f"INSERT INTO {table} ({names}) VALUES ({values}) ON CONFLICT DO NOTHING"
    inserted = 0
    with conn.cursor() as cur:
        for row in rows:
            cur.execute(sql, row)
            inserted += cur.rowcount
    return inserted


def seed_departments(dsn: str) -> int:
    with psycopg.connect(psycopg_dsn(dsn)) as conn:
        return _insert_pg(conn, "departments", DEPARTMENTS)


def admin_password(local_dev: bool) -> str:
    """SEED_ADMIN_PASSWORD; the documented default only in the local dev run."""
    chosen = os.environ.get("SEED_ADMIN_PASSWORD", "")
    if local_dev:
        return chosen or DEFAULT_ADMIN_PASSWORD
    if not chosen or chosen == DEFAULT_ADMIN_PASSWORD:
        raise SystemExit(
            "seed: refusing to create admin@fixup.test with "
            + ("no password" if not chosen else "the documented default password")
            + ": set SEED_ADMIN_PASSWORD to a password of your own (in .env for Compose, in"
            " the Secret fixup-secrets for Kubernetes); only `make run` falls back to the"
            " default (python -m tools.local.seed --local-dev)"
        )
    return chosen


def seed_users(dsn: str, admin: str | None = None) -> int:
    """The ADMIN gets `admin` (main passes the checked SEED_ADMIN_PASSWORD); tests seeding
    their own databases pass none and get the local dev run's password."""
    admin_password_ = admin if admin is not None else admin_password(local_dev=True)
    user_password = os.environ.get("SEED_USER_PASSWORD") or DEFAULT_USER_PASSWORD
    everyone = (ADMIN, *CUSTOMERS)
    with psycopg.connect(psycopg_dsn(dsn)) as conn:
        existing = {
            str(row[0])
            for row in conn.execute(
                "SELECT id FROM users WHERE id = ANY(%s::uuid[])", ([u.id for u in everyone],)
            )
        }
        # argon2 is slow on purpose: hash only for users still missing
        rows = [
            (*u[:-1], hash_password(admin_password_ if u is ADMIN else user_password), True)
            for u in everyone
            if u.id not in existing
        ]
        columns = (*User._fields[:-1], "password_hash", "verified")  # points: not users'
        return _insert_pg(conn, "users", rows, columns)


def seed_points(dsn: str) -> int:
    """A balance and the one ledger row that explains it, per seed user with points."""
    inserted = 0
    with mysql_connect(dsn, database=database_name(dsn)) as conn, conn.cursor() as cur:
        conn.begin()
        for u in CUSTOMERS:
            if u.points is None:
                continue
            inserted += cur.execute(
                "INSERT INTO user_points (user_id, points) VALUES (%s, %s)"
                " ON DUPLICATE KEY UPDATE user_id = user_id",
                (u.id, u.points),
            )
            cur.execute(
                "INSERT INTO points_ledger"
                " (idempotency_key, user_id, delta, reason, balance_after)"
                " VALUES (%s, %s, %s, %s, %s)"
                " ON DUPLICATE KEY UPDATE id = id",
                (f"seed:{u.id}", u.id, u.points, "seed data", u.points),
            )
        conn.commit()
    return inserted


def seed_catalog(dsn: str) -> int:
    with psycopg.connect(psycopg_dsn(dsn)) as conn:
        return sum(
            _insert_pg(conn, table, rows)
            for table, rows in (
                ("category_types", CATEGORY_TYPES),
                ("categories", CATEGORIES),
                ("subcategories", SUBCATEGORIES),
                ("services", CATALOG_SERVICES),
            )
        )


SEEDERS = (
    ("departments", seed_departments, len(DEPARTMENTS)),
    ("users", seed_users, 1 + len(CUSTOMERS)),
    ("points", seed_points, sum(u.points is not None for u in CUSTOMERS)),
    (
        "catalog",
        seed_catalog,
        len(CATEGORY_TYPES) + len(CATEGORIES) + len(SUBCATEGORIES) + len(CATALOG_SERVICES),
    ),
)


def main(argv: list[str] | None = None) -> int:
    """Migrate the database of every built service (orders and chat have no seed data, but
    `make run` starts them), then load the seed data of those that have some."""
    parser = argparse.ArgumentParser(prog="python -m tools.local.seed", description=__doc__)
    parser.add_argument(
        "--local-dev",
        action="store_true",
        help="the local dev run: the ADMIN may get the documented default password",
    )
    args = parser.parse_args([] if argv is None else argv)
    admin = admin_password(args.local_dev)  # refuses before anything is written
    seeders = {db: (seed, total) for db, seed, total in SEEDERS}
    databases = [s.database for s in registry.built_services()]
    for db in [*seeders, *(d for d in databases if d not in seeders)]:
        dsn = get_database(db).dsn()
        try:
            create_database(dsn)  # the lock lives in the database
            with database_lock(dsn, "seed"):
                migrate.up(db, dsn)
                if db not in seeders:
                    print(f"{db}: migrated, no seed data")
                    continue
                seed, total = seeders[db]
                inserted = seed_users(dsn, admin) if seed is seed_users else seed(dsn)
        except Exception as exc:  # one clear line for the Makefile user, not a traceback
            print(f"seed: {db}: {exc}", file=sys.stderr)
            return 2
        print(f"{db}: {total} seed rows, {inserted} inserted, {total - inserted} already there")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
