"""A person's part of their data export (ADR 0059): what every service's route shares.

Each service that holds rows about a person answers `GET /v1/users/{id|me}/export` with
them, one list per table, named after the table; the users service assembles the parts
through these routes (no service reads another's database). The caller's token travels
with the call as on every call between services (docs/architecture.md): the person
themself or an ADMIN, so a part shows nobody more than the export does.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from aiohttp import web

from lib.auth.principal import Principal, Role
from lib.errors import Forbidden, PayloadTooLarge
from lib.http.access import EVERY_ROLE, SELF
from lib.http.guards import authenticated, path_uuid
from lib.http.keys import SETTINGS

T = TypeVar("T")
PATH = "/v1/users/{id}/export"
# `@operation(..., **ACCESS)`: any signed-in caller for their own id (or `me`), an ADMIN
# for anyone's
ACCESS: dict[str, Any] = {"roles": EVERY_ROLE, "owner": SELF, "any_owner": ("ADMIN",), "me": True}
ERRORS = (400, 403, 413)
DESCRIPTION = (
    "One list per table, every row of it that names the person (`{id}` may be `me`), for "
    "their data export, which the users service assembles (ADR 0059). The person or an "
    "ADMIN; anyone else: 403. More than EXPORT_MAX_ROWS rows of one table: 413."
)


def subject(request: web.Request) -> tuple[Principal, uuid.UUID]:
    """The caller and the person `{id|me}` names: 403 unless it is the caller or an ADMIN."""
    principal = authenticated(request)
    if request.match_info["id"] == "me":
        return principal, principal.user_id
    user_id = path_uuid(request)
    if user_id != principal.user_id and principal.role is not Role.ADMIN:
        raise Forbidden("only the person or an ADMIN may export their data")
    return principal, user_id


def row_limit(request: web.Request) -> int:
    """The rows a query reads: one more than the bound, to tell "more" from "exactly"."""
    bound: int = request.app[SETTINGS].export_max_rows
    return bound + 1


def bounded(request: web.Request, table: str, rows: list[T]) -> list[T]:
    """`rows` when within EXPORT_MAX_ROWS, else 413 naming the table and the bound."""
    bound: int = request.app[SETTINGS].export_max_rows
    if len(rows) > bound:
        raise PayloadTooLarge(
            f"more than {bound} rows of {table} to export",
            extensions={"table": table, "limit": bound},
        )
    return rows
