"""Every table of every service's database that refers to a person has its field in the data
export (ADR 0059), derived from the schemas, so a new table is caught without editing
this test.

The rule of "refers to a person", read from each database with every migration applied
(information_schema; PostgreSQL and MariaDB alike):

- the identity table itself: `users` in the users database (its `id` is the person);
- a column named `user_id`, ending in `_user_id`, or one of PERSON_COLUMNS (the roles a
  person plays in a row: customer, provider, author, sender, recipient, actor, owner);
- a foreign key to `users` (within the users database: no key crosses databases).

What the export holds is read from the committed OpenAPI documents (`make swag-check`
keeps them equal to the code): the users service's `ExportOut` has a section per service,
and in it a field per table (a section documented only as "a list per table" is the
service's own `GET /v1/users/{id}/export` answer). test_users_export.py checks that a real
export has exactly the documented fields.

LEFT_OUT names what is not exported on purpose, each with why (ADR 0059 says the same);
`audit_events` is left out in every database: see its reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lib import registry
from lib.db.connecting import connect
from tests import pg

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "docs" / "openapi"
IDENTITY = ("users", "users")  # (database, table) of the person themself
PERSON_COLUMNS = {
    "user_id",
    "customer_id",
    "provider_id",
    "author_id",
    "sender_id",
    "recipient_id",
    "actor_id",
    "owner_id",
}
# (database or "*" for every database, table) -> why its rows are not in the export
LEFT_OUT: dict[tuple[str, str], str] = {
    ("users", "webauthn_challenges"): "a passkey ceremony's one-use challenge (hash only), "
    "gone within WEBAUTHN_CHALLENGE_TTL (minutes): state of a sign-in, not data about them",
    ("users", "second_factor_challenges"): "a password sign-in waiting for its code, gone "
    "within SECOND_FACTOR_CHALLENGE_TTL (minutes); it holds a copy of the password hash",
    ("*", "audit_events"): "the operators' trail of who did what (ADMIN-readable): it "
    "names the staff and the security decisions taken about the person; what the person "
    "did themself is in the rows the export already holds. Kept for accountability and "
    "answered by the operator on request, not handed out by self-service",
    ("*", "erased_users"): "the erasures a database has applied (ADR 0060): only the id of "
    "a person already erased, whose export is a 404; nothing about a living account",
}


def refers_to_a_person(database: str, table: str, column: str) -> bool:
    return (database, table) == IDENTITY or column in PERSON_COLUMNS or column.endswith("_user_id")


async def person_tables(database: str, engine: str, dsn: str) -> set[str]:
    """The tables of `database` that refer to a person, by the rule above."""
    if engine == "postgresql":
        async with pg.connected(dsn) as conn:
            columns = await conn.fetch(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public'"
            )
            keyed = await conn.fetch(
                "SELECT DISTINCT tc.table_name FROM information_schema.table_constraints tc "
                "JOIN information_schema.constraint_column_usage cu "
                "ON cu.constraint_name = tc.constraint_name "
                "AND cu.constraint_schema = tc.constraint_schema "
                "WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = 'public' "
                "AND cu.table_name = 'users'"
            )
        pairs = [(r["table_name"], r["column_name"]) for r in columns]
        foreign = {r["table_name"] for r in keyed}
    else:
        db = await connect(dsn, min_size=1, max_size=1)
        try:
            async with db.acquire() as conn, conn.cursor() as cur:
                await cur.execute(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = DATABASE()"
                )
                pairs = [(str(t), str(c)) for t, c in await cur.fetchall()]
                await cur.execute(
                    "SELECT DISTINCT table_name FROM information_schema.key_column_usage "
                    "WHERE table_schema = DATABASE() AND referenced_table_name = 'users'"
                )
                foreign = {str(t) for (t,) in await cur.fetchall()}
        finally:
            await db.close()
    return {t for t, c in pairs if refers_to_a_person(database, t, c)} | foreign


def document(service: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((OPENAPI / f"{service}.json").read_text())
    return spec


def properties(spec: dict[str, Any], schema: dict[str, Any]) -> set[str] | None:
    """The fields of `schema` ($ref followed); None for a free-form map."""
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "properties" in schema:
        return set(schema["properties"])
    return None


def exported_fields() -> dict[str, set[str]]:
    """Section (a service) -> its fields (tables), from the OpenAPI documents."""
    users = document("users")
    root = users["components"]["schemas"]["ExportOut"]["properties"]
    sections: dict[str, set[str]] = {}
    for section, schema in root.items():
        if section in ("user_id", "exported_at"):
            continue
        fields = properties(users, schema)
        if fields is None:  # "a list per table": the service's own part documents them
            own = document(section)
            answer = own["paths"]["/v1/users/{id}/export"]["get"]["responses"]["200"]
            data = answer["content"]["application/json"]["schema"]["properties"]["data"]
            fields = properties(own, data)
            assert fields is not None, f"{section}: its part documents no tables"
        sections[section] = fields
    return sections


def missing(tables: dict[str, set[str]], sections: dict[str, set[str]]) -> list[str]:
    """Each person table neither in its service's section nor LEFT_OUT, as db.table."""
    by_database = {s.database: s.name for s in registry.MICROSERVICES}
    wrong = []
    for database, found in sorted(tables.items()):
        fields = sections.get(by_database[database], set())
        for table in sorted(found):
            if table in fields or (database, table) in LEFT_OUT or ("*", table) in LEFT_OUT:
                continue
            wrong.append(f"{database}.{table}")
    return wrong


@pytest.fixture(scope="module")
async def tables(migrated_db: Callable[[str], str]) -> dict[str, set[str]]:
    """Database -> its person tables, every built service's database migrated to the head."""
    found = {}
    for service in registry.MICROSERVICES:
        if service.built:
            found[service.database] = await person_tables(
                service.database, service.engine, migrated_db(service.database)
            )
    return found


async def test_every_table_about_a_person_is_exported(tables: dict[str, set[str]]) -> None:
    assert missing(tables, exported_fields()) == []


async def test_the_rule_finds_the_tables_known_today(tables: dict[str, set[str]]) -> None:
    """The rule is not vacuous: the person tables of the first release are all found."""
    known = {
        "users": {"users", "provider_details", "refresh_token_families", "passkeys"},
        "orders": {"orders", "offers", "jobs", "reviews"},
        "chat": {"conversations", "messages"},
        "catalog": {"provider_services"},
        "points": {"user_points", "points_ledger"},
    }
    for database, names in known.items():
        assert names <= tables[database], (database, names - tables[database])


async def test_a_part_left_out_fails(tables: dict[str, set[str]]) -> None:
    """Drop one field from a section (a service that forgot a table): the check names it;
    a new table with a person column is caught the same way."""
    sections = exported_fields()
    assert "messages" in sections["chat"]
    sections["chat"] = sections["chat"] - {"messages"}
    assert missing(tables, sections) == ["chat.messages"]
    grown = {**tables, "orders": tables["orders"] | {"warranties"}}
    assert missing(grown, exported_fields()) == ["orders.warranties"]


def test_what_is_left_out_still_exists_or_is_on_its_way() -> None:
    """A LEFT_OUT entry of one database names a table of its migrations (no stale entry);
    `*` entries are the cross-database ones (audit_events, erased_users)."""
    for (database, table), why in LEFT_OUT.items():
        assert why
        if database != "*":
            sql = "".join(p.read_text() for p in (ROOT / "migrations" / database).glob("*.sql"))
            assert f"CREATE TABLE {table} " in sql, (database, table)
