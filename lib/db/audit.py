"""What an audit event keeps of a change: its fields, secrets and personal numbers redacted.

One event per successful write, in the write's own transaction (lib/http/audit.py for HTTP,
services/points/service.py for gRPC; ADR 0057). The fields before and after the change
are kept as JSON; a field whose name says it holds a secret (a password or its hash, a
token, a TOTP secret or its URI and QR code, recovery or one-time codes, a challenge, a
signature, the provider's personal id) keeps only lib.redact's mark, at any depth, and so
does a field that holds what a person is or wrote (PERSONAL_FIELD: a name, a contact, an
address, a free text, a browser's signature): the trail is append-only, so what an erasure
must remove is never written there (docs/operations.md, "Data retention"). An event still
says who changed which fields of what, and when, with every other value.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import orjson

from lib.redact import REDACTED

# matched anywhere in a field's name, ignoring case; `code` alone (a one-time code), not
# `currency_code`
SECRET_FIELD = re.compile(
    r"password|secret|token|otpauth|qr_svg|recovery_code|challenge|personal_id|signature"
    r"|credential|^codes?$",
    re.IGNORECASE,
)


# a field's whole name: what a person is (names, contacts, age, salary, picture) or wrote
# (an order's address and description, an offer's message, a chat message, a review)
PERSONAL_FIELD = re.compile(
    r"email|first_name|last_name|phone_number|age|salary|picture_url|address|description"
    r"|message|body|comment|user_agent"
)


def redact(value: Any) -> Any:
    """`value` (plain JSON) with the value of every secret-named or personal field replaced."""
    if isinstance(value, dict):
        return {
            key: REDACTED
            if SECRET_FIELD.search(key) or PERSONAL_FIELD.fullmatch(key)
            else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return str(value)  # a driver's UUID, a Decimal: their text, as the API writes them


def fields(value: Any) -> Any:
    """A row, model or JSON value as the redacted JSON an event keeps (None: nothing)."""
    if value is None:
        return None
    plain = orjson.dumps(value, default=_plain, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)
    return redact(orjson.loads(plain))


class AuditQueries(Protocol):
    """The generated `services.<svc>.db.audit` (sql/common/audit.sql, mysql/audit.sql)."""

    async def insert_audit_event(
        self,
        conn: Any,
        *,
        subject_id: Any,
        subject_role: str | None,
        action: str,
        resource: str,
        resource_id: str | None,
        route: str,
        request_id: str,
        before_fields: Any,
        after_fields: Any,
    ) -> None: ...
