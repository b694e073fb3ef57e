"""A person's data export (docs/api.md, "The data export"; ADR 0059):
`GET /v1/users/{id|me}/export`, the person themself or an ADMIN.

Users' own rows come from its database; every other service's from that service's own
`GET /v1/users/{id}/export` (points: `GetUserExport`), called with the caller's token as
every call between services is (docs/architecture.md), concurrently, after the users
connection went back to the pool (ADR 0005). Bounded three ways:

- in time: the slowest dependency's worst case (its attempts times its timeout, points' one
  deadline) plus the retry's longest pause; a service that does not answer within it,
  answers 5xx or is behind an open breaker fails the whole export with 503 naming it —
  never a silently partial document;
- in size: EXPORT_MAX_ROWS rows of one table (each part checks its own, 413 naming the
  service and table) and EXPORT_MAX_BYTES for the document (413);
- in rate: EXPORT_RATE / EXPORT_BURST per exported person, whoever asks (429).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from aiohttp import web
from betterproto2 import Casing, OutputFormat

from lib.clients.http import JsonHttpClient, dependency_client
from lib.db.runtime import PgConn
from lib.errors import CircuitOpen, PayloadTooLarge, ServiceUnavailable
from lib.forwarding import request_id
from lib.http import export
from lib.http.jsonio import dumps
from lib.http.keys import DB, LIMITS
from lib.http.openapi import operation
from lib.pb.point import UserExportReply
from lib.resilience.ratelimit import RateLimiter, enforce, make_rate_limiter
from services.users.access import missing
from services.users.auth_kit import users_settings
from services.users.db import auth as auth_q
from services.users.db import export as q
from services.users.db import passkeys as passkeys_q
from services.users.db import second_factor as factor_q
from services.users.db import users as users_q
from services.users.export_schemas import ExportOut
from services.users.pictures import picture_url
from services.users.points import POINTS
from services.users.settings import UsersSettings
from services.users.user_json import user_json

routes = web.RouteTableDef()
PARTS = ("orders", "chat", "catalog")  # the REST services with a part (lib/http/export.py)
RETRY_PAUSE = 1.0  # the longest pause between two attempts (lib/resilience/retry.py)


@runtime_checkable
class PointsExport(Protocol):
    async def get_user_export(
        self, user_id: str, max_rows: int, *, request_id: str | None = None
    ) -> UserExportReply: ...


@dataclass(frozen=True)
class ExportKit:
    parts: dict[str, JsonHttpClient]
    limit: RateLimiter
    deadline: float  # seconds the parts may take together


EXPORT_KIT: web.AppKey[ExportKit] = web.AppKey("export_kit", ExportKit)


def export_ctx(settings: UsersSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """The parts' clients (a session and a breaker each) and the export's rate limit."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        parts = {name: dependency_client(name, settings) for name in PARTS}
        worst = [client.timeout * client.attempts for client in parts.values()]
        app[EXPORT_KIT] = ExportKit(
            parts=parts,
            limit=make_rate_limiter(
                "export", settings.export_rate, settings.export_burst, app[LIMITS].store
            ),
            deadline=max(*worst, settings.points_timeout) + RETRY_PAUSE,
        )
        try:
            yield
        finally:
            for client in parts.values():
                await client.close()

    return ctx


def unavailable(
    service: str, why: str, kind: type[ServiceUnavailable | CircuitOpen] = ServiceUnavailable
) -> ServiceUnavailable | CircuitOpen:
    """503 naming the service (CIRCUIT_OPEN while its breaker is open)."""
    return kind(
        f"the export needs {service}, which did not answer ({why}); nothing was exported",
        retry_after=1,
        extensions={"service": service},
    )


async def rest_part(request: web.Request, name: str, user_id: uuid.UUID) -> Any:
    try:
        reply = (
            await request.app[EXPORT_KIT]
            .parts[name]
            .get(export.PATH.format(id=user_id), caller=request)
        )
    except (ServiceUnavailable, CircuitOpen) as exc:
        raise unavailable(name, exc.detail, type(exc)) from None
    body = reply.body if isinstance(reply.body, dict) else {}
    if reply.status == 413:
        raise PayloadTooLarge(
            f"{name}: {body.get('detail', 'too many rows')}",
            extensions={"service": name, "limit": body.get("limit")},
        )
    if reply.status != 200 or "data" not in body:
        raise unavailable(name, f"answered {reply.status}")
    return body["data"]


async def points_part(request: web.Request, user_id: uuid.UUID, bound: int) -> dict[str, Any]:
    lookup = request.app[POINTS]
    if not isinstance(lookup, PointsExport):
        raise unavailable("points", "no points address is configured")
    try:
        reply = await lookup.get_user_export(str(user_id), bound, request_id=request_id(request))
    except (ServiceUnavailable, CircuitOpen) as exc:
        raise unavailable("points", exc.detail, type(exc)) from None
    if len(reply.ledger) > bound:
        raise PayloadTooLarge(
            f"points: more than {bound} rows of points_ledger to export",
            extensions={"service": "points", "limit": bound},
        )
    return {
        "user_points": {"points": int(reply.user_point), "updated_at": reply.updated_at or None},
        "points_ledger": [
            entry.to_dict(  # Python values (a uint64 stays a number), the proto's names
                output_format=OutputFormat.PYTHON, casing=Casing.SNAKE, include_default_values=True
            )
            for entry in reply.ledger
        ],
    }


async def within(deadline: float, name: str, part: Awaitable[Any]) -> Any:
    try:
        async with asyncio.timeout(deadline):
            return await part
    except TimeoutError:
        raise unavailable(name, f"no answer within {deadline:g} s") from None


async def other_parts(request: web.Request, user_id: uuid.UUID, bound: int) -> dict[str, Any]:
    """Every other service's part, concurrently; the first failure cancels the rest."""
    deadline = request.app[EXPORT_KIT].deadline
    calls: dict[str, Awaitable[Any]] = {
        name: rest_part(request, name, user_id) for name in PARTS
    } | {"points": points_part(request, user_id, bound)}
    tasks = {name: asyncio.ensure_future(within(deadline, name, c)) for name, c in calls.items()}
    try:
        await asyncio.gather(*tasks.values())
    except BaseException:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        raise
    return {name: task.result() for name, task in tasks.items()}


def bounded(rows: list[Any], table: str, bound: int) -> list[Any]:
    if len(rows) > bound:
        raise PayloadTooLarge(
            f"users: more than {bound} rows of {table} to export",
            extensions={"service": "users", "limit": bound},
        )
    return rows


async def own_rows(conn: PgConn, user_id: uuid.UUID, bound: int) -> dict[str, Any]:
    """Users' tables that name the person, without a secret: no password hash, TOTP secret,
    recovery code, token or token hash."""
    details = await q.export_provider_details(conn, user_id=user_id)
    sessions = await q.export_sessions(conn, user_id=user_id, row_limit=bound + 1)
    mails = await q.export_email_tokens(conn, user_id=user_id, row_limit=bound + 1)
    factor = await factor_q.totp_of(conn, user_id=user_id)
    revocations = await auth_q.revocations_of(conn, user_ids=[user_id])
    return {
        "provider_details": None
        if details is None
        else {"personal_id_last4": details.personal_id_last_4, "created_at": details.created_at},
        "refresh_token_families": bounded(sessions, "refresh_token_families", bound),
        "passkeys": await passkeys_q.passkeys_of(conn, user_id=user_id),
        "totp_factors": {
            "enrolled": factor is not None,
            "confirmed_at": None if factor is None else factor.confirmed_at,
        },
        "recovery_codes": {"left": await factor_q.recovery_codes_left(conn, user_id=user_id)},
        "email_tokens": bounded(mails, "email_tokens", bound),
        "token_revocations": ({"not_before": revocations[0].not_before} if revocations else None),
    }


@routes.get(export.PATH)
@operation(
    "Export a person's data",
    tags=["users"],
    response=ExportOut,
    errors=(400, 403, 404, 413, 429, 502, 503),
    description=(
        "Every row about the person in every service as one document, a section per "
        "service and in it a field per table (ADR 0059): users' own rows (the profile with "
        "a signed picture link; sessions, passkeys, email links as metadata; whether an "
        "authenticator app is set up), and each other service's part, asked of that "
        "service. No password hash, TOTP secret, recovery code or token. `{id}` may be "
        "`me`; the person or an ADMIN, anyone else 403. A service that does not answer "
        "in time (or is down): 503 naming it in `service`, nothing exported. More than "
        "EXPORT_MAX_ROWS rows of one table or EXPORT_MAX_BYTES in all: 413. "
        "EXPORT_RATE exports of one person a second (EXPORT_BURST at once): 429."
    ),
    **export.ACCESS,
)
async def export_user(request: web.Request) -> web.Response:
    principal, user_id = export.subject(request)
    await enforce(request.app[EXPORT_KIT].limit, f"user:{user_id}")
    settings = users_settings(request)
    bound = settings.export_max_rows
    async with request.app[DB].acquire() as conn:
        row = await users_q.get_user(conn, id=user_id)
        if row is None:
            raise await missing(conn, principal, user_id)
        own = await own_rows(conn, user_id, bound)
    parts = await other_parts(request, user_id, bound)  # no connection held meanwhile
    profile = user_json(
        row,
        {str(user_id): parts["points"]["user_points"]["points"]},
        await picture_url(request.app, row.picture_key),
    )
    document = {
        "user_id": user_id,
        "exported_at": datetime.now(UTC),
        "users": {"users": profile, **own},
        **parts,
    }
    body = dumps({"data": document})
    if len(body) > settings.export_max_bytes:
        raise PayloadTooLarge(
            f"the export is larger than {settings.export_max_bytes} bytes",
            extensions={"limit": settings.export_max_bytes},
        )
    return web.Response(body=body, content_type="application/json")
