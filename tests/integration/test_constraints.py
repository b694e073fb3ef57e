"""The schemas of migrations/ enforce their constraints, table by table, on the real engines.

For every table: a valid row is accepted; each CHECK / UNIQUE / NOT NULL / FK refuses a
violating row with the expected error naming the constraint (or, for NOT NULL, the
column). Rows are built by one factory per table (`FACTORIES`, fresh parents included)
plus the overrides of each case. Each database is migrated once per module; every
violating insert runs in its own transaction so the connection stays usable.
`test_every_constraint_has_a_violation_case` reads every CHECK / UNIQUE / FK / EXCLUDE
from the migrated databases and fails naming each one no `Bad` case violates.
"""

from __future__ import annotations

import importlib
import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import psycopg.errors as pg
import pymysql
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from lib.db.connecting import engine_of
from tests.integration.constraint_support import (
    Bad,
    First,
    Good,
    Overrides,
    Row,
    audit_event_row,
    erased_user_row,
    idempotency_key_cases,
    idempotency_key_row,
    table_version_cases,
    table_version_row,
    uid,
    unique,
)
from tools.local.databases import DATABASES, database_name
from tools.local.dbadmin import mysql_connect, psycopg_dsn

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_currencies = itertools.count()


class Db:
    """One migrated database of this module: its connection and the first row per table."""

    def __init__(self, name: str, dsn: str) -> None:
        self.name = name
        self.mysql = engine_of(dsn) == "mysql"
        self.first: dict[str, Row] = {}
        if self.mysql:
            self.my = mysql_connect(dsn, database=database_name(dsn))
        else:
            self.pg = psycopg.connect(psycopg_dsn(dsn), autocommit=True, row_factory=dict_row)

    def close(self) -> None:
        (self.my if self.mysql else self.pg).close()

    def resolve(self, value: Any) -> Any:
        return self.first[value.table][value.column] if isinstance(value, First) else value

    def row(self, table: str, overrides: Overrides | None = None) -> Row:
        """A valid row for `table` (creating fresh parents), with `overrides` applied."""
        extra = overrides(self) if callable(overrides) else (overrides or {})
        base = FACTORIES[self.name][table](self)
        return base | {k: self.resolve(v) for k, v in extra.items()}

    def insert(self, table: str, row: Row) -> Row:
        if self.mysql:
            names = ", ".join(f"`{c}`" for c in row)
            marks = ", ".join(["%s"] * len(row))
            with self.my.cursor(pymysql.cursors.DictCursor) as cur:
                cur.execute(
                    f"INSERT INTO `{table}` ({names}) VALUES ({marks}) RETURNING *",
                    tuple(row.values()),
                )
                result = cur.fetchone()
        else:
            query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING *").format(
                sql.Identifier(table),
                sql.SQL(", ").join(map(sql.Identifier, row)),
                sql.SQL(", ").join(sql.Placeholder() * len(row)),
            )
            result = self.pg.execute(query, tuple(row.values())).fetchone()
        assert result is not None
        return dict(result)

    def add(self, table: str, overrides: Overrides | None = None) -> Row:
        return self.insert(table, self.row(table, overrides))


# --- valid rows, one factory per table ------------------------------------------------


def currency_code(n: int) -> str:
    """QAA, QAB, ...: codes no real currency uses."""
    return "Q" + chr(65 + n // 26) + chr(65 + n % 26)


def token_hash() -> bytes:
    return uuid.uuid4().bytes + uuid.uuid4().bytes


def user_row(db: Db) -> Row:
    return {
        "email": f"{unique('user').replace(' ', '')}@example.com",
        "password_hash": "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone_number": "+1 555 0100",
        "role": "CUSTOMER",
        "age": 36,
        "salary": Decimal("1000.50"),
    }


def order_row(db: Db) -> Row:
    return {
        "customer_id": uid(),
        "service_id": uid(),
        "description": "Fix the kitchen sink",
        "address": "1 Test St",
        "time_start": T0,
        "time_end": T0 + timedelta(hours=2),
    }


def offer_row(db: Db) -> Row:
    order = db.add("orders")
    return {
        "order_id": order["id"],
        "provider_id": uid(),
        "price": Decimal("80.00"),
        "currency": "USD",
        "book_time": T0,
        "message": "I can come on Monday.",
    }


def job_row(db: Db) -> Row:
    offer = db.add("offers")
    return {
        "order_id": offer["order_id"],
        "offer_id": offer["id"],
        "customer_id": uid(),
        "provider_id": offer["provider_id"],
    }


def review_row(db: Db) -> Row:
    job = db.add("jobs", {"status": "COMPLETED", "completed_at": T0})
    return {
        "job_id": job["id"],
        "customer_id": job["customer_id"],
        "provider_id": job["provider_id"],
        "rating": Decimal("4.5"),
        "comment": "Quick and tidy.",
    }


def ledger_row(db: Db) -> Row:
    return {
        "idempotency_key": unique("job"),
        "user_id": uid(),
        "delta": 10,
        "reason": "job completed",
        "balance_after": 10,
    }


# Per db, its tables in dependency order (dict order is the insertion order of first rows).
FACTORIES: dict[str, dict[str, Callable[[Db], Row]]] = {  # names services on purpose: their rows
    "departments": {
        "departments": lambda db: {"name": unique("Dept"), "address": "1 Main St"},
        "idempotency_keys": idempotency_key_row,
        "table_versions": table_version_row,
        "audit_events": audit_event_row,
    },
    "users": {
        "users": user_row,
        "provider_details": lambda db: {
            "user_id": db.add("users")["id"],
            "personal_id_encrypted": b"\x01" * 28,
            "personal_id_last4": "1234",
        },
        "refresh_token_families": lambda db: {"user_id": db.add("users")["id"]},
        "refresh_tokens": lambda db: {
            "family_id": db.add("refresh_token_families")["id"],
            "token_hash": token_hash(),
            "expires_at": datetime.now(UTC) + timedelta(days=30),
        },
        "email_tokens": lambda db: {
            "user_id": db.add("users")["id"],
            "purpose": "VERIFY_EMAIL",
            "token_hash": token_hash(),
            "expires_at": datetime.now(UTC) + timedelta(hours=24),
        },
        "idempotency_keys": idempotency_key_row,
        "mail_outbox": lambda db: {"recipient": "a@fixup.test", "subject": "Hi", "body": "Hello"},
        # a revocation of an account of its own (the record is keyed by the user id alone)
        "token_revocations": lambda db: {"user_id": uid(), "not_before": datetime.now(UTC)},
        "webauthn_challenges": lambda db: {
            "challenge_hash": token_hash(),
            "ceremony": "REGISTER",
            "user_id": db.add("users")["id"],
            "expires_at": datetime.now(UTC) + timedelta(minutes=2),
        },
        "totp_factors": lambda db: {
            "user_id": db.add("users")["id"],
            "secret_encrypted": b"\x01" * 60,
        },
        "recovery_codes": lambda db: {"user_id": db.add("users")["id"], "code_hash": token_hash()},
        "second_factor_challenges": lambda db: {
            "token_hash": token_hash(),
            "user_id": db.add("users")["id"],
            "step": "VERIFY",
            "password_hash": "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "expires_at": datetime.now(UTC) + timedelta(minutes=5),
        },
        "passkeys": lambda db: {
            "user_id": db.add("users")["id"],
            "credential_id": token_hash(),
            "public_key": b"\xa5" * 77,
            "name": "Laptop",
        },
        # a group of its own (a department no user has): the summary the triggers keep
        "user_statistics": lambda db: {
            "role": "CUSTOMER",
            "department_id": uid(),
            "verified": True,
        },
        "audit_events": audit_event_row,
        "erased_users": erased_user_row,
        "table_versions": table_version_row,
    },
    "points": {
        "user_points": lambda db: {"user_id": uid(), "points": 5},
        "points_ledger": ledger_row,
        "audit_events": audit_event_row,
        "table_versions": table_version_row,
    },
    "catalog": {
        "category_types": lambda db: {"name": unique("Type")},
        "categories": lambda db: {
            "type_id": db.add("category_types")["id"],
            "name": unique("Category"),
        },
        "subcategories": lambda db: {
            "category_id": db.add("categories")["id"],
            "name": unique("Subcategory"),
        },
        "services": lambda db: {
            "subcategory_id": db.add("subcategories")["id"],
            "name": unique("Service"),
            "description": "A service",
            "base_price": Decimal("99.99"),
            "currency": "USD",
        },
        "provider_services": lambda db: {
            "provider_id": uid(),
            "service_id": db.add("services")["id"],
        },
        "table_versions": table_version_row,
        "audit_events": audit_event_row,
        "erased_users": erased_user_row,
    },
    "orders": {
        "currencies": lambda db: {
            "code": currency_code(next(_currencies)),
            "name": "Test money",
            "minor_units": 2,
        },
        "orders": order_row,
        "offers": offer_row,
        "jobs": job_row,
        "reviews": review_row,
        "outbox": lambda db: {
            "topic": "points.add",
            "aggregate_id": uid(),
            "payload": Jsonb({"user_id": uid(), "delta": 10}),
            "idempotency_key": f"job:{uid()}",
        },
        "idempotency_keys": idempotency_key_row,
        "table_versions": table_version_row,
        "audit_events": audit_event_row,
        "erased_users": erased_user_row,
    },
    "chat": {
        "conversations": lambda db: {
            "order_id": uid(),
            "customer_id": uid(),
            "provider_id": uid(),
        },
        "messages": lambda db: {
            "conversation_id": db.add("conversations")["id"],
            "seq": 1,
            "author_id": uid(),
            "body": "Hello!",
        },
        "idempotency_keys": idempotency_key_row,
        "audit_events": audit_event_row,
        "erased_users": erased_user_row,
    },
}


# --- cases --------------------------------------------------------------------------

MY_CHECK, MY_DUPLICATE, MY_NULL, MY_TOO_LONG = 4025, 1062, 1048, 1406


def second_active_job(db: Db) -> Row:
    """Another job for the order of the first job, through a fresh offer on that order."""
    order_id = db.first["jobs"]["order_id"]
    return {"order_id": order_id, "offer_id": db.add("offers", {"order_id": order_id})["id"]}


UUID_UPPER = "0C000000-0000-4000-8000-000000000001"

# Strings the API strips to "" (Python's str.strip: every Unicode whitespace character);
# three characters each, so a "3..32 after trimming" CHECK must refuse them too.
BLANKS = ["\t\t\t", "\n\r\n", "\u00a0" * 3, "\u3000" * 3, " \u2028\u0085\x1c "]
PYTHON_WHITESPACE = [chr(c) for c in range(0x110000) if chr(c).isspace()]

# (db, table, column, CHECK): every column whose CHECK refuses blank text.
BLANK_CHECKS = [
    ("departments", "departments", "name", "departments_name_chk"),
    ("departments", "departments", "address", "departments_address_chk"),
    ("users", "users", "first_name", "users_first_name_chk"),
    ("users", "users", "last_name", "users_last_name_chk"),
    ("users", "users", "phone_number", "users_phone_number_chk"),
    ("users", "passkeys", "name", "passkeys_name_chk"),
    ("catalog", "category_types", "name", "category_types_name_chk"),
    ("catalog", "categories", "name", "categories_name_chk"),
    ("catalog", "subcategories", "name", "subcategories_name_chk"),
    ("catalog", "services", "name", "services_name_chk"),
    ("orders", "currencies", "name", "currencies_name_chk"),
    ("orders", "orders", "description", "orders_description_chk"),
    ("orders", "orders", "address", "orders_address_chk"),
    ("orders", "outbox", "topic", "outbox_topic_chk"),
    ("chat", "messages", "body", "messages_body_chk"),
    ("points", "points_ledger", "reason", "points_ledger_reason_chk"),
]


def blank_cases() -> list[Bad]:
    return [
        Bad(db, table, check, MY_CHECK if db == "points" else pg.CheckViolation, {column: blank})
        for db, table, column, check in BLANK_CHECKS
        for blank in BLANKS
    ]


BAD: list[Bad] = [
    # departments
    Bad("departments", "departments", "departments_name_key", pg.UniqueViolation,
        {"name": First("departments", "name")}),
    Bad("departments", "departments", "departments_name_chk", pg.CheckViolation, {"name": "  "}),
    Bad("departments", "departments", "departments_name_chk", pg.CheckViolation,
        {"name": "x" * 101}),
    Bad("departments", "departments", "departments_address_chk", pg.CheckViolation,
        {"address": ""}),
    Bad("departments", "departments", "departments_version_chk", pg.CheckViolation,
        {"version": 0}),
    Bad("departments", "departments", "name", pg.NotNullViolation, {"name": None}),
    Bad("departments", "departments", "address", pg.NotNullViolation, {"address": None}),
    *idempotency_key_cases("departments"),
    *table_version_cases("departments"),
    # users
    Bad("users", "users", "users_email_key", pg.UniqueViolation,
        {"email": First("users", "email")}),
    Bad("users", "users", "users_email_lower_chk", pg.CheckViolation,
        {"email": "Upper@Example.com"}),
    Bad("users", "users", "users_email_chk", pg.CheckViolation, {"email": "no-at-sign"}),
    Bad("users", "users", "users_email_chk", pg.CheckViolation,
        {"email": "x" * 250 + "@a.io"}),
    Bad("users", "users", "users_password_hash_chk", pg.CheckViolation, {"password_hash": ""}),
    Bad("users", "users", "users_first_name_chk", pg.CheckViolation, {"first_name": " "}),
    Bad("users", "users", "users_last_name_chk", pg.CheckViolation, {"last_name": "x" * 101}),
    Bad("users", "users", "users_phone_number_chk", pg.CheckViolation, {"phone_number": "12"}),
    Bad("users", "users", "users_age_chk", pg.CheckViolation, {"age": -1}),
    Bad("users", "users", "users_age_chk", pg.CheckViolation, {"age": 151}),
    Bad("users", "users", "users_salary_chk", pg.CheckViolation, {"salary": Decimal("-0.01")}),
    Bad("users", "users", "users_picture_key_chk", pg.CheckViolation, {"picture_key": ""}),
    Bad("users", "users", "users_deleted_at_chk", pg.CheckViolation, {"deleted_at": T0}),
    Bad("users", "users", "users_version_chk", pg.CheckViolation, {"version": 0}),
    Bad("users", "users", "email", pg.NotNullViolation, {"email": None}),
    Bad("users", "users", "role", pg.NotNullViolation, {"role": None}),
    Bad("users", "users", "verified", pg.NotNullViolation, {"verified": None}),
    Bad("users", "users", "user_role", pg.InvalidTextRepresentation, {"role": "ROOT"}),
    Bad("users", "provider_details", "provider_details_pkey", pg.UniqueViolation,
        {"user_id": First("provider_details", "user_id")}),
    Bad("users", "provider_details", "provider_details_user_id_fkey", pg.ForeignKeyViolation,
        {"user_id": uid()}),
    Bad("users", "provider_details", "provider_details_personal_id_last4_chk",
        pg.CheckViolation, {"personal_id_last4": "123"}),
    Bad("users", "provider_details", "provider_details_personal_id_encrypted_chk",
        pg.CheckViolation, {"personal_id_encrypted": b""}),
    Bad("users", "provider_details", "personal_id_encrypted", pg.NotNullViolation,
        {"personal_id_encrypted": None}),
    Bad("users", "refresh_token_families", "refresh_token_families_user_id_fkey",
        pg.ForeignKeyViolation, {"user_id": uid()}),
    Bad("users", "refresh_token_families", "refresh_token_families_revoked_reason_chk",
        pg.CheckViolation, {"revoked_reason": "logout"}),
    Bad("users", "refresh_tokens", "refresh_tokens_token_hash_key", pg.UniqueViolation,
        {"token_hash": First("refresh_tokens", "token_hash")}),
    Bad("users", "refresh_tokens", "refresh_tokens_family_id_fkey", pg.ForeignKeyViolation,
        {"family_id": uid()}),
    Bad("users", "refresh_tokens", "refresh_tokens_token_hash_chk", pg.CheckViolation,
        {"token_hash": b"short"}),
    Bad("users", "refresh_tokens", "refresh_tokens_expires_at_chk", pg.CheckViolation,
        {"created_at": T0, "expires_at": T0}),
    Bad("users", "refresh_tokens", "expires_at", pg.NotNullViolation, {"expires_at": None}),
    Bad("users", "email_tokens", "email_tokens_token_hash_key", pg.UniqueViolation,
        {"token_hash": First("email_tokens", "token_hash")}),
    Bad("users", "email_tokens", "email_tokens_user_id_fkey", pg.ForeignKeyViolation,
        {"user_id": uid()}),
    Bad("users", "email_tokens", "email_tokens_token_hash_chk", pg.CheckViolation,
        {"token_hash": b"\x01" * 15}),
    Bad("users", "email_tokens", "email_tokens_expires_at_chk", pg.CheckViolation,
        {"created_at": T0, "expires_at": T0 - timedelta(seconds=1)}),
    Bad("users", "email_tokens", "email_token_purpose", pg.InvalidTextRepresentation,
        {"purpose": "LOGIN"}),
    Bad("users", "email_tokens", "purpose", pg.NotNullViolation, {"purpose": None}),
    Bad("users", "mail_outbox", "mail_outbox_recipient_chk", pg.CheckViolation,
        {"recipient": "ab"}),
    Bad("users", "mail_outbox", "mail_outbox_subject_chk", pg.CheckViolation, {"subject": ""}),
    Bad("users", "mail_outbox", "mail_outbox_body_chk", pg.CheckViolation, {"body": ""}),
    Bad("users", "mail_outbox", "mail_outbox_attempts_chk", pg.CheckViolation, {"attempts": -1}),
    Bad("users", "token_revocations", "token_revocations_pkey", pg.UniqueViolation,
        {"user_id": First("token_revocations", "user_id")}),
    Bad("users", "token_revocations", "not_before", pg.NotNullViolation, {"not_before": None}),
    Bad("users", "webauthn_challenges", "webauthn_challenges_pkey", pg.UniqueViolation,
        {"challenge_hash": First("webauthn_challenges", "challenge_hash")}),
    Bad("users", "webauthn_challenges", "webauthn_challenges_user_id_fkey",
        pg.ForeignKeyViolation, {"user_id": uid()}),
    Bad("users", "webauthn_challenges", "webauthn_challenges_challenge_hash_chk",
        pg.CheckViolation, {"challenge_hash": b"\x01" * 31}),
    Bad("users", "webauthn_challenges", "webauthn_challenges_user_chk", pg.CheckViolation,
        {"user_id": None}),
    Bad("users", "webauthn_challenges", "webauthn_challenges_user_chk", pg.CheckViolation,
        {"ceremony": "SIGN_IN"}),
    Bad("users", "webauthn_challenges", "webauthn_challenges_expires_at_chk", pg.CheckViolation,
        {"created_at": T0, "expires_at": T0}),
    Bad("users", "webauthn_challenges", "webauthn_ceremony", pg.InvalidTextRepresentation,
        {"ceremony": "LOGIN"}),
    Bad("users", "webauthn_challenges", "expires_at", pg.NotNullViolation, {"expires_at": None}),
    Bad("users", "passkeys", "passkeys_user_id_fkey", pg.ForeignKeyViolation, {"user_id": uid()}),
    Bad("users", "passkeys", "passkeys_credential_id_key", pg.UniqueViolation,
        {"credential_id": First("passkeys", "credential_id")}),
    Bad("users", "passkeys", "passkeys_credential_id_chk", pg.CheckViolation,
        {"credential_id": b"\x01" * 15}),
    Bad("users", "passkeys", "passkeys_public_key_chk", pg.CheckViolation, {"public_key": b""}),
    Bad("users", "passkeys", "passkeys_sign_count_chk", pg.CheckViolation, {"sign_count": -1}),
    Bad("users", "passkeys", "passkeys_sign_count_chk", pg.CheckViolation,
        {"sign_count": 2**32}),
    Bad("users", "passkeys", "passkeys_name_chk", pg.CheckViolation, {"name": "x" * 101}),
    Bad("users", "passkeys", "public_key", pg.NotNullViolation, {"public_key": None}),
    Bad("users", "totp_factors", "totp_factors_pkey", pg.UniqueViolation,
        {"user_id": First("totp_factors", "user_id")}),
    Bad("users", "totp_factors", "totp_factors_user_id_fkey", pg.ForeignKeyViolation,
        {"user_id": uid()}),
    Bad("users", "totp_factors", "totp_factors_secret_encrypted_chk", pg.CheckViolation,
        {"secret_encrypted": b"\x01" * 28}),
    Bad("users", "totp_factors", "totp_factors_last_step_chk", pg.CheckViolation,
        {"last_step": -1}),
    Bad("users", "recovery_codes", "recovery_codes_pkey", pg.UniqueViolation,
        {"user_id": First("recovery_codes", "user_id"),
         "code_hash": First("recovery_codes", "code_hash")}),
    Bad("users", "recovery_codes", "recovery_codes_user_id_fkey", pg.ForeignKeyViolation,
        {"user_id": uid()}),
    Bad("users", "recovery_codes", "recovery_codes_code_hash_chk", pg.CheckViolation,
        {"code_hash": b"\x01" * 31}),
    Bad("users", "second_factor_challenges", "second_factor_challenges_pkey",
        pg.UniqueViolation, {"token_hash": First("second_factor_challenges", "token_hash")}),
    Bad("users", "second_factor_challenges", "second_factor_challenges_user_id_fkey",
        pg.ForeignKeyViolation, {"user_id": uid()}),
    Bad("users", "second_factor_challenges", "second_factor_challenges_token_hash_chk",
        pg.CheckViolation, {"token_hash": b"\x01" * 16}),
    Bad("users", "second_factor_challenges", "second_factor_challenges_attempts_chk",
        pg.CheckViolation, {"attempts": 6}),
    Bad("users", "second_factor_challenges", "second_factor_challenges_expires_at_chk",
        pg.CheckViolation, {"created_at": T0, "expires_at": T0}),
    Bad("users", "second_factor_challenges", "second_factor_step",
        pg.InvalidTextRepresentation, {"step": "SKIP"}),
    Bad("users", "user_statistics", "user_statistics_group_key", pg.UniqueViolation,
        {"department_id": First("user_statistics", "department_id")}),
    *idempotency_key_cases("users"),
    *table_version_cases("users"),
    # points (MariaDB: error codes; NOT NULL names the column, duplicates the key)
    Bad("points", "user_points", "PRIMARY", MY_DUPLICATE,
        {"user_id": First("user_points", "user_id")}),
    Bad("points", "user_points", "user_points_user_id_chk", MY_CHECK, {"user_id": "x" * 36}),
    Bad("points", "user_points", "user_points_user_id_chk", MY_CHECK, {"user_id": UUID_UPPER}),
    Bad("points", "user_points", "user_points_points_chk", MY_CHECK, {"points": -1}),
    Bad("points", "user_points", "points", MY_NULL, {"points": None}),
    Bad("points", "user_points", "user_id", MY_NULL, {"user_id": None}),
    Bad("points", "points_ledger", "points_ledger_idempotency_key_key", MY_DUPLICATE,
        {"idempotency_key": First("points_ledger", "idempotency_key")}),
    Bad("points", "points_ledger", "points_ledger_idempotency_key_chk", MY_CHECK,
        {"idempotency_key": ""}),
    Bad("points", "points_ledger", "idempotency_key", MY_TOO_LONG,
        {"idempotency_key": "k" * 129}),
    Bad("points", "points_ledger", "points_ledger_user_id_chk", MY_CHECK,
        {"user_id": "not-a-uuid"}),
    Bad("points", "points_ledger", "points_ledger_delta_chk", MY_CHECK, {"delta": 0}),
    Bad("points", "points_ledger", "points_ledger_reason_chk", MY_CHECK, {"reason": "   "}),
    Bad("points", "points_ledger", "reason", MY_TOO_LONG, {"reason": "r" * 201}),
    Bad("points", "points_ledger", "points_ledger_balance_after_chk", MY_CHECK,
        {"balance_after": -1}),
    Bad("points", "points_ledger", "reason", MY_NULL, {"reason": None}),
    Bad("points", "points_ledger", "user_id", MY_NULL, {"user_id": None}),
    Bad("points", "points_ledger", "delta", MY_NULL, {"delta": None}),
    # MariaDB's JSON is LONGTEXT with a json_valid() CHECK named after the column
    Bad("points", "audit_events", "before_fields", MY_CHECK, {"before_fields": "{not json"}),
    Bad("points", "audit_events", "after_fields", MY_CHECK, {"after_fields": "{not json"}),
    Bad("points", "audit_events", "action", MY_NULL, {"action": None}),
    Bad("points", "table_versions", "PRIMARY", MY_DUPLICATE,
        {"name": First("table_versions", "name")}),
    Bad("points", "table_versions", "version", MY_NULL, {"version": None}),
    # catalog
    Bad("catalog", "category_types", "category_types_name_key", pg.UniqueViolation,
        {"name": First("category_types", "name")}),
    Bad("catalog", "category_types", "category_types_name_chk", pg.CheckViolation,
        {"name": ""}),
    Bad("catalog", "category_types", "category_types_version_chk", pg.CheckViolation,
        {"version": 0}),
    Bad("catalog", "categories", "categories_type_id_name_key", pg.UniqueViolation,
        {"type_id": First("categories", "type_id"), "name": First("categories", "name")}),
    Bad("catalog", "categories", "categories_type_id_fkey", pg.ForeignKeyViolation,
        {"type_id": uid()}),
    Bad("catalog", "categories", "categories_name_chk", pg.CheckViolation, {"name": "x" * 101}),
    Bad("catalog", "categories", "categories_version_chk", pg.CheckViolation, {"version": 0}),
    Bad("catalog", "categories", "type_id", pg.NotNullViolation, {"type_id": None}),
    Bad("catalog", "subcategories", "subcategories_category_id_name_key", pg.UniqueViolation,
        {"category_id": First("subcategories", "category_id"),
         "name": First("subcategories", "name")}),
    Bad("catalog", "subcategories", "subcategories_category_id_fkey", pg.ForeignKeyViolation,
        {"category_id": uid()}),
    Bad("catalog", "subcategories", "subcategories_name_chk", pg.CheckViolation, {"name": " "}),
    Bad("catalog", "subcategories", "subcategories_version_chk", pg.CheckViolation,
        {"version": 0}),
    Bad("catalog", "services", "services_subcategory_id_name_key", pg.UniqueViolation,
        {"subcategory_id": First("services", "subcategory_id"),
         "name": First("services", "name")}),
    Bad("catalog", "services", "services_subcategory_id_fkey", pg.ForeignKeyViolation,
        {"subcategory_id": uid()}),
    Bad("catalog", "services", "services_name_chk", pg.CheckViolation, {"name": "x" * 201}),
    Bad("catalog", "services", "services_description_chk", pg.CheckViolation,
        {"description": "d" * 2001}),
    Bad("catalog", "services", "services_base_price_chk", pg.CheckViolation,
        {"base_price": Decimal("-1")}),
    Bad("catalog", "services", "services_currency_chk", pg.CheckViolation, {"currency": "usd"}),
    Bad("catalog", "services", "services_currency_chk", pg.CheckViolation, {"currency": "US"}),
    Bad("catalog", "services", "services_version_chk", pg.CheckViolation, {"version": 0}),
    Bad("catalog", "services", "base_price", pg.NotNullViolation, {"base_price": None}),
    Bad("catalog", "provider_services", "provider_services_pkey", pg.UniqueViolation,
        {"provider_id": First("provider_services", "provider_id"),
         "service_id": First("provider_services", "service_id")}),
    Bad("catalog", "provider_services", "provider_services_service_id_fkey",
        pg.ForeignKeyViolation, {"service_id": uid()}),
    Bad("catalog", "provider_services", "provider_id", pg.NotNullViolation,
        {"provider_id": None}),
    *table_version_cases("catalog"),
    # orders
    Bad("orders", "currencies", "currencies_pkey", pg.UniqueViolation, {"code": "USD"}),
    Bad("orders", "currencies", "currencies_code_chk", pg.CheckViolation, {"code": "usd"}),
    Bad("orders", "currencies", "currencies_name_chk", pg.CheckViolation, {"name": " "}),
    Bad("orders", "currencies", "currencies_minor_units_chk", pg.CheckViolation,
        {"minor_units": 5}),
    Bad("orders", "currencies", "minor_units", pg.NotNullViolation, {"minor_units": None}),
    Bad("orders", "orders", "orders_customer_name_chk", pg.CheckViolation,
        {"customer_name": ""}),
    Bad("orders", "orders", "orders_description_chk", pg.CheckViolation,
        {"description": " "}),
    Bad("orders", "orders", "orders_description_chk", pg.CheckViolation,
        {"description": "d" * 2001}),
    Bad("orders", "orders", "orders_address_chk", pg.CheckViolation, {"address": ""}),
    Bad("orders", "orders", "orders_time_chk", pg.CheckViolation, {"time_end": T0}),
    Bad("orders", "orders", "orders_version_chk", pg.CheckViolation, {"version": 0}),
    Bad("orders", "orders", "customer_id", pg.NotNullViolation, {"customer_id": None}),
    Bad("orders", "orders", "status", pg.NotNullViolation, {"status": None}),
    Bad("orders", "orders", "order_status", pg.InvalidTextRepresentation, {"status": "DONE"}),
    Bad("orders", "offers", "offers_order_id_provider_id_pending_key", pg.UniqueViolation,
        {"order_id": First("offers", "order_id"), "provider_id": First("offers", "provider_id")}),
    Bad("orders", "offers", "offers_order_id_fkey", pg.ForeignKeyViolation, {"order_id": uid()}),
    Bad("orders", "offers", "offers_currency_fkey", pg.ForeignKeyViolation, {"currency": "XXX"}),
    Bad("orders", "offers", "offers_price_chk", pg.CheckViolation, {"price": Decimal("0")}),
    Bad("orders", "offers", "offers_message_chk", pg.CheckViolation, {"message": "m" * 2001}),
    Bad("orders", "offers", "book_time", pg.NotNullViolation, {"book_time": None}),
    Bad("orders", "jobs", "jobs_order_id_active_key", pg.UniqueViolation, second_active_job),
    Bad("orders", "jobs", "jobs_offer_id_key", pg.UniqueViolation,
        {"order_id": First("jobs", "order_id"), "offer_id": First("jobs", "offer_id"),
         "status": "CANCELLED"}),
    # the offer exists, but belongs to another order
    Bad("orders", "jobs", "jobs_offer_id_fkey", pg.ForeignKeyViolation,
        {"offer_id": First("offers", "id")}),
    # no such order (so no such offer either: jobs_order_id_fkey is checked first)
    Bad("orders", "jobs", "jobs_order_id_fkey", pg.ForeignKeyViolation, {"order_id": uid()}),
    Bad("orders", "jobs", "jobs_completed_at_chk", pg.CheckViolation, {"status": "COMPLETED"}),
    Bad("orders", "jobs", "jobs_completed_at_chk", pg.CheckViolation, {"completed_at": T0}),
    Bad("orders", "jobs", "provider_id", pg.NotNullViolation, {"provider_id": None}),
    Bad("orders", "reviews", "reviews_job_id_key", pg.UniqueViolation,
        {"job_id": First("reviews", "job_id")}),
    Bad("orders", "reviews", "reviews_job_id_fkey", pg.ForeignKeyViolation, {"job_id": uid()}),
    Bad("orders", "reviews", "reviews_rating_chk", pg.CheckViolation, {"rating": Decimal("0")}),
    Bad("orders", "reviews", "reviews_rating_chk", pg.CheckViolation, {"rating": Decimal("5.5")}),
    Bad("orders", "reviews", "reviews_rating_chk", pg.CheckViolation, {"rating": Decimal("4.3")}),
    Bad("orders", "reviews", "reviews_comment_chk", pg.CheckViolation, {"comment": "c" * 2001}),
    Bad("orders", "reviews", "rating", pg.NotNullViolation, {"rating": None}),
    Bad("orders", "outbox", "outbox_idempotency_key_key", pg.UniqueViolation,
        {"idempotency_key": First("outbox", "idempotency_key")}),
    Bad("orders", "outbox", "outbox_idempotency_key_chk", pg.CheckViolation,
        {"idempotency_key": ""}),
    Bad("orders", "outbox", "outbox_topic_chk", pg.CheckViolation, {"topic": ""}),
    Bad("orders", "outbox", "outbox_payload_chk", pg.CheckViolation, {"payload": Jsonb([1])}),
    Bad("orders", "outbox", "outbox_attempts_chk", pg.CheckViolation, {"attempts": -1}),
    Bad("orders", "outbox", "payload", pg.NotNullViolation, {"payload": None}),
    *idempotency_key_cases("orders"),
    *table_version_cases("orders"),
    # chat
    Bad("chat", "conversations", "conversations_order_id_provider_id_key", pg.UniqueViolation,
        {"order_id": First("conversations", "order_id"),
         "provider_id": First("conversations", "provider_id")}),
    Bad("chat", "conversations", "conversations_participants_chk", pg.CheckViolation,
        lambda db: {"provider_id": (same := uid()), "customer_id": same}),
    Bad("chat", "conversations", "order_id", pg.NotNullViolation, {"order_id": None}),
    Bad("chat", "messages", "messages_conversation_id_fkey", pg.ForeignKeyViolation,
        {"conversation_id": uid()}),
    Bad("chat", "messages", "messages_body_chk", pg.CheckViolation, {"body": " \n\t "}),
    Bad("chat", "messages", "messages_body_chk", pg.CheckViolation, {"body": "b" * 4001}),
    Bad("chat", "messages", "messages_body_chk", pg.CheckViolation, {"body": ""}),
    Bad("chat", "messages", "author_id", pg.NotNullViolation, {"author_id": None}),
    Bad("chat", "messages", "seq", pg.NotNullViolation, {"seq": None}),
    Bad("chat", "messages", "messages_seq_chk", pg.CheckViolation, {"seq": 0}),
    Bad("chat", "messages", "messages_conversation_id_seq_key", pg.UniqueViolation,
        {"conversation_id": First("messages", "conversation_id"), "seq": 1}),
    Bad("chat", "conversations", "conversations_last_seq_chk", pg.CheckViolation,
        {"last_seq": -1}),
    *idempotency_key_cases("chat"),
    *blank_cases(),
    # every character Python strips, alone: the CHECKs' set is exactly Python's whitespace
    *(Bad("departments", "departments", "departments_name_chk", pg.CheckViolation,
          {"name": c}) for c in PYTHON_WHITESPACE),
    *(Bad("points", "points_ledger", "points_ledger_reason_chk", MY_CHECK, {"reason": c})
      for c in PYTHON_WHITESPACE),
]  # fmt: skip

GOOD: list[Good] = [
    Good("users", "users", "nullable personal fields",
         {"age": None, "salary": None, "department_id": None, "picture_key": None}),
    Good("users", "users", "age and salary bounds", {"age": 0, "salary": Decimal("0")}),
    Good("users", "users", "anonymised", {"disabled_at": T0, "deleted_at": T0}),
    Good("users", "refresh_token_families", "revoked with reason",
         {"revoked_at": T0, "revoked_reason": "reuse detected"}),
    Good("points", "user_points", "zero points", {"points": 0}),
    Good("points", "points_ledger", "negative delta", {"delta": -5, "balance_after": 0}),
    Good("catalog", "categories", "same name under another type",
         {"name": First("categories", "name")}),
    Good("catalog", "services", "free service", {"base_price": Decimal("0")}),
    Good("orders", "orders", "no customer name snapshot", {"customer_name": None}),
    Good("orders", "offers", "a decided offer next to the PENDING one",
         {"order_id": First("offers", "order_id"), "provider_id": First("offers", "provider_id"),
          "status": "REJECTED"}),
    Good("orders", "offers", "no message", {"message": None}),
    Good("orders", "jobs", "a new job after the old one was cancelled",
         lambda db: second_active_job(db) | {"status": "CANCELLED"}),
    Good("orders", "reviews", "lowest rating", {"rating": Decimal("0.5")}),
    Good("orders", "reviews", "highest rating", {"rating": Decimal("5")}),
    Good("chat", "messages", "4000 characters after trimming", {"body": " " + "b" * 4000 + "\n"}),
    Good("chat", "messages", "4000 characters after trimming Unicode spaces",
         {"body": "\u3000" + "b" * 4000 + "\u00a0\u2029"}),
    Good("users", "users", "3 characters between Unicode spaces",
         {"phone_number": "\u00a0123\u3000"}),
    # Python does not strip U+200B (ZERO WIDTH SPACE) or U+180E, so neither does the CHECK
    Good("departments", "departments", "zero width space is not whitespace",
         {"name": "\u200b"}),
    Good("departments", "departments", "mongolian vowel separator is not whitespace",
         {"name": "\u180e"}),
    Good("points", "points_ledger", "zero width space is not whitespace", {"reason": "\u200b"}),
]  # fmt: skip


# --- fixtures and tests -------------------------------------------------------------


@pytest.fixture(scope="module")
def open_db(migrated_db: Callable[[str], str]) -> Iterator[Callable[[str], Db]]:
    """`open_db("users")`: that db migrated once per module, with a first row per table."""
    opened: dict[str, Db] = {}

    def get(name: str) -> Db:
        if name not in opened:
            db = opened[name] = Db(name, migrated_db(name))
            for table in FACTORIES.get(name, {}):
                db.first[table] = db.add(table)
        return opened[name]

    yield get
    for db in opened.values():
        db.close()


# a database whose cases live in its own tests/integration/constraints_<db>.py (what
# `make new-service` writes): its FACTORIES and BAD join these
for _name in DATABASES:
    if importlib.util.find_spec(f"tests.integration.constraints_{_name}") is not None:
        _own = importlib.import_module(f"tests.integration.constraints_{_name}")
        FACTORIES[_name] = _own.FACTORIES
        BAD.extend(_own.BAD)

TABLES = [(db, table) for db, tables in FACTORIES.items() for table in tables]


@pytest.mark.parametrize(("name", "table"), TABLES, ids=[f"{d}.{t}" for d, t in TABLES])
def test_a_valid_row_is_accepted(open_db: Callable[[str], Db], name: str, table: str) -> None:
    db = open_db(name)
    row = db.add(table)
    assert row
    if "version" in row:
        assert row["version"] == 1


@pytest.mark.parametrize("case", GOOD, ids=str)
def test_an_allowed_edge_is_accepted(open_db: Callable[[str], Db], case: Good) -> None:
    db = open_db(case.db)
    assert db.add(case.table, case.overrides)


# PyMySQL's exception class per MariaDB error code
MY_ERROR_CLASS: dict[int, type[pymysql.MySQLError]] = {
    MY_CHECK: pymysql.err.OperationalError,
    MY_DUPLICATE: pymysql.err.IntegrityError,
    MY_NULL: pymysql.err.IntegrityError,
    MY_TOO_LONG: pymysql.err.DataError,
}


def assert_refused_mysql(db: Db, case: Bad) -> None:
    assert isinstance(case.error, int)
    db.my.begin()
    try:
        with pytest.raises(MY_ERROR_CLASS[case.error]) as raised:
            db.insert(case.table, db.row(case.table, case.overrides))
    finally:
        db.my.rollback()
    code, message = raised.value.args[0], raised.value.args[1]
    assert code == case.error, message
    # a column's own CHECK (a JSON column's json_valid) is named `table.column` in the message
    names = (f"'{case.name}'", f"`{case.name}`", f"`{case.table}.{case.name}`")
    assert any(name in message for name in names), message


def assert_refused_pg(db: Db, case: Bad) -> None:
    assert isinstance(case.error, type)
    with pytest.raises(case.error) as raised, db.pg.transaction():
        db.insert(case.table, db.row(case.table, case.overrides))
    error = raised.value
    assert case.name in str(error)
    if isinstance(error, pg.IntegrityError):
        assert (error.diag.constraint_name or error.diag.column_name) == case.name


@pytest.mark.parametrize("case", BAD, ids=str)
def test_a_violation_is_refused(open_db: Callable[[str], Db], case: Bad) -> None:
    db = open_db(case.db)
    (assert_refused_mysql if db.mysql else assert_refused_pg)(db, case)


@pytest.mark.parametrize(
    ("parent", "child", "column"),
    [
        ("category_types", "categories", "type_id"),
        ("categories", "subcategories", "category_id"),
        ("subcategories", "services", "subcategory_id"),
    ],
)
def test_catalog_parents_with_children_cannot_be_deleted(
    open_db: Callable[[str], Db], parent: str, child: str, column: str
) -> None:
    db = open_db("catalog")
    with pytest.raises(pg.ForeignKeyViolation) as raised, db.pg.transaction():
        db.pg.execute(
            sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(parent)),
            (db.first[child][column],),
        )
    assert raised.value.diag.constraint_name == f"{child}_{column}_fkey"


@pytest.mark.parametrize(
    ("name", "parent", "child", "column"),
    [
        ("catalog", "services", "provider_services", "service_id"),
        ("chat", "conversations", "messages", "conversation_id"),
        ("users", "users", "provider_details", "user_id"),
        ("users", "users", "email_tokens", "user_id"),
        ("users", "refresh_token_families", "refresh_tokens", "family_id"),
    ],
)
def test_deleting_a_parent_cascades(
    open_db: Callable[[str], Db], name: str, parent: str, child: str, column: str
) -> None:
    db = open_db(name)
    child_row = db.add(child)
    parent_id = child_row[column]
    db.pg.execute(
        sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(parent)), (parent_id,)
    )
    left = db.pg.execute(
        sql.SQL("SELECT count(*) AS n FROM {} WHERE {} = %s").format(
            sql.Identifier(child), sql.Identifier(column)
        ),
        (parent_id,),
    ).fetchone()
    assert left == {"n": 0}


def test_currencies_come_with_the_migration(open_db: Callable[[str], Db]) -> None:
    rows = (
        open_db("orders")
        .pg.execute(
            "SELECT code, minor_units FROM currencies"
            " WHERE code IN ('USD', 'EUR', 'GBP', 'GEL', 'JPY') ORDER BY code"
        )
        .fetchall()
    )
    assert [(r["code"], r["minor_units"]) for r in rows] == [
        ("EUR", 2),
        ("GBP", 2),
        ("GEL", 2),
        ("JPY", 0),
        ("USD", 2),
    ]


# --- coverage: every constraint of every database has a violation case above --------------

PG_CONSTRAINTS = """
SELECT c.conname AS name FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' AND c.contype IN ('c', 'u', 'f', 'x') AND t.relname !~ '^_?yoyo'
UNION
SELECT i.relname FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' AND x.indisunique AND NOT x.indisprimary AND t.relname !~ '^_?yoyo'
  AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = x.indexrelid
                  AND k.contype IN ('p', 'u', 'x'))
"""
MY_CONSTRAINTS = """
SELECT CONSTRAINT_NAME FROM information_schema.TABLE_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = DATABASE() AND CONSTRAINT_TYPE IN ('CHECK', 'UNIQUE', 'FOREIGN KEY')
  AND TABLE_NAME NOT LIKE '%%yoyo%%'
UNION
SELECT CONSTRAINT_NAME FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME NOT LIKE '%%yoyo%%'
"""


# Constraints no insert can violate alone, with the reason; each must still exist.
IMPLIED: dict[str, dict[str, str]] = {
    "orders": {"offers_id_order_id_key": "implied by offers_pkey (id is unique on its own); "
               "it exists as the target of jobs_offer_id_fkey"},
}  # fmt: skip


def database_constraints(db: Db) -> set[str]:
    """CHECK, UNIQUE (constraints and unique indexes), FOREIGN KEY and EXCLUDE names."""
    if db.mysql:
        with db.my.cursor() as cur:
            cur.execute(MY_CONSTRAINTS)
            return {row[0] for row in cur.fetchall()}
    return {row["name"] for row in db.pg.execute(PG_CONSTRAINTS).fetchall()}


MY_TABLES = "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
PG_TABLES = "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'"


def database_tables(db: Db) -> set[str]:
    """The tables the migrations made, less yoyo's own."""
    if db.mysql:
        with db.my.cursor() as cur:
            cur.execute(MY_TABLES)
            names = {row[0] for row in cur.fetchall()}
    else:
        names = {row["name"] for row in db.pg.execute(PG_TABLES).fetchall()}
    return {name for name in names if "yoyo" not in name}


@pytest.mark.parametrize("name", list(DATABASES))
def test_every_table_has_a_factory(open_db: Callable[[str], Db], name: str) -> None:
    """A new database or table cannot go unchecked: add its factory to FACTORIES."""
    tables = database_tables(open_db(name))
    assert tables, f"{name}: no tables found (is the query right?)"
    missing = sorted(tables - set(FACTORIES.get(name, {})))
    assert not missing, f"{name}: no factory in FACTORIES for: {', '.join(missing)}"


@pytest.mark.parametrize("name", list(DATABASES))
def test_every_constraint_has_a_violation_case(open_db: Callable[[str], Db], name: str) -> None:
    """A new CHECK / UNIQUE / FK cannot go untested: add a `Bad` case for it to BAD."""
    violated = {case.name for case in BAD if case.db == name}
    implied = set(IMPLIED.get(name, {}))
    constraints = database_constraints(open_db(name))
    assert constraints, f"{name}: no constraints found (is the query right?)"
    assert constraints >= implied, f"{name}: IMPLIED names a missing constraint"
    untested = sorted(constraints - violated - implied)
    assert not untested, f"{name}: no Bad case violates: {', '.join(untested)}"
