"""The audit trail of every HTTP service: one event per successful write, in its transaction.

The innermost layer (`audit_middleware`, ADR 0057) wraps every POST, PUT, PATCH and DELETE
of a declared route (`@operation`) in one transaction on the request's connection (the
scope's, lib.db.scope): the handler's own `transaction()` becomes a savepoint inside it and
its `acquire()` lends the same connection. A 2xx inserts its event (the generated
`insert_audit_event` of sql/common/audit.sql) before the commit, so the change and its
event commit together or not at all. A refusal (an AppError, an HTTP error) writes no
event and commits what the handler committed before refusing (a wrong code counted),
as it would have without the layer; anything else rolls back. An idempotent replay
changed nothing: no event.

The event: who (the principal's id and role; none for an anonymous write), what (the
operation's id, its first tag as the resource, the id in the path or the created
body's `id`, the route template), the request id, the fields before (what the handler
passed to `before()`) and after (the response's `data`), redacted (lib/db/audit.py), and
the database's time.

`GET /v1/audit-events` (`audit_routes`) lists them for ADMIN: filters by subject,
resource, request id and time, sorted by time either way, keyset paged (lib/http/cursor.py).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

import orjson
from aiohttp import web
from pydantic import AwareDatetime, BaseModel, Field

from lib.db.audit import AuditQueries, fields
from lib.errors import AppError
from lib.http.cursor import KeysetListQuery, list_page
from lib.http.jsonio import json_response
from lib.http.keys import DB, principal_of, request_id
from lib.http.openapi import declared, operation

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REPLAYED = "Idempotent-Replayed"  # lib/http/idempotency.py's mark of a replay
AUDIT: web.AppKey[AuditQueries | None] = web.AppKey("audit")
BEFORE: web.RequestKey[Any] = web.RequestKey("audit_before")


def before(request: web.Request, value: Any) -> None:
    """The changed resource as it was: kept in the write's event (redacted)."""
    request[BEFORE] = value


def is_write(route: web.AbstractRoute) -> bool:
    return route.method in WRITES and declared(route.handler) is not None


async def check_audited(app: web.Application) -> None:
    """on_startup of an app with a database: a declared write but no audit queries
    refuses to start (every route is added by then)."""
    if app.get(AUDIT) is None and any(is_write(route) for route in app.router.routes()):
        raise RuntimeError("this app writes but records no audit events: pass create_app(audit=)")


def _after(response: web.StreamResponse) -> Any:
    body = response.body if isinstance(response, web.Response) else None
    if not isinstance(body, bytes) or response.content_type != "application/json":
        return None
    value = orjson.loads(body)
    return value.get("data") if isinstance(value, dict) else None


async def record(request: web.Request, conn: Any, response: web.StreamResponse) -> None:
    """Insert the event of this request's successful write on `conn` (its transaction)."""
    queries = request.app[AUDIT]
    assert queries is not None
    op = declared(request.match_info.handler)
    assert op is not None
    principal = principal_of(request)
    after = _after(response)
    resource_id = request.match_info.get("id")
    if resource_id is None and isinstance(after, dict) and "id" in after:
        resource_id = str(after["id"])
    resource = request.match_info.route.resource
    await queries.insert_audit_event(
        conn,
        subject_id=principal.user_id if principal is not None else None,
        subject_role=str(principal.role) if principal is not None else None,
        action=op.operation_id,
        resource=op.tags[0] if op.tags else "",
        resource_id=resource_id,
        route=f"{request.method} {resource.canonical if resource is not None else request.path}",
        request_id=request_id(request),
        before_fields=fields(request.get(BEFORE)),
        after_fields=fields(after),
    )


@web.middleware
async def audit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in WRITES or request.app.get(AUDIT) is None:
        return await handler(request)
    if declared(request.match_info.handler) is None:  # not a route of the service's own
        return await handler(request)
    refusal: BaseException | None = None
    async with request.app[DB].transaction() as conn:
        try:
            response = await handler(request)
        except (AppError, web.HTTPException) as exc:
            refusal = exc  # no event; what the handler committed before refusing stays
        else:
            if 200 <= response.status < 300 and REPLAYED not in response.headers:
                await record(request, conn, response)
    if refusal is not None:
        raise refusal
    return response


class AuditListQuery(KeysetListQuery):
    orderby: Literal["occurred_at"] | None = Field(None, description="Sort key; occurred_at.")
    subject_id: uuid.UUID | None = Field(None, description="Events of this subject (user id).")
    resource: str | None = Field(None, max_length=100, description="Events on this resource.")
    request_id: str | None = Field(None, max_length=128, description="Events of this request.")
    since: AwareDatetime | None = Field(None, description="Events at or after this time.")
    until: AwareDatetime | None = Field(None, description="Events before this time.")


FILTERS = {"subject_id", "resource", "request_id", "since", "until"}  # AuditListQuery's own


class AuditEvent(BaseModel):
    id: uuid.UUID
    occurred_at: datetime.datetime = Field(description="The database's time of the write.")
    subject_id: uuid.UUID | None = Field(description="Who wrote; null: an anonymous write.")
    subject_role: str | None
    action: str = Field(description="The operationId of the write.")
    resource: str
    resource_id: str | None
    route: str = Field(description="The method and route template.")
    request_id: str
    before_fields: Any = Field(description="The changed fields before, redacted; or null.")
    after_fields: Any = Field(description="The fields after, redacted; or null.")


class NumberedAuditEvent(AuditEvent):
    id: int = Field(description="The event's number (MariaDB: AUTO_INCREMENT).")  # type: ignore[assignment]


class AuditListing(Protocol):
    """The generated list of sql/common/audit.sql or sql/common/mysql/audit.sql
    (`services.<svc>.db.audit`)."""

    LIST_AUDIT_EVENTS_SORTING: Any

    async def count_audit_events(self, conn: Any, **filters: Any) -> int: ...

    async def list_audit_events(self, conn: Any, **kwargs: Any) -> list[Any]: ...


def audit_routes(queries: AuditListing, engine: str) -> web.RouteTableDef:
    """`GET /v1/audit-events` on `queries`, for ADMIN (`engine`: an event's id is a UUID on
    PostgreSQL, a number on MariaDB)."""
    routes = web.RouteTableDef()

    @routes.get("/v1/audit-events")
    @operation(
        "List audit events",
        tags=["audit"],
        response=AuditEvent if engine == "postgresql" else NumberedAuditEvent,
        paged=True,
        cursor_paged=True,
        query=AuditListQuery,
        roles=("ADMIN",),
        description="Every successful write of this service, one event each, written in "
        "its transaction (ADR 0057). Oldest first by default.",
    )
    async def list_audit_events(request: web.Request) -> web.Response:
        lp = list_page(request, queries.LIST_AUDIT_EVENTS_SORTING, AuditListQuery)
        filters = lp.query.model_dump(include=FILTERS)
        db = request.app[DB]
        # sqlc names MariaDB's `LIMIT ? OFFSET ?` itself (sql/common/mysql/audit.sql)
        page = "row_" if db.engine == "postgresql" else ""
        paging = {f"{page}limit": lp.limit, f"{page}offset": lp.offset}
        async with db.acquire() as conn:
            total = None if lp.after else await queries.count_audit_events(conn, **filters)
            rows = await queries.list_audit_events(
                conn, **filters, **paging, orderby=lp.orderby, sort=lp.sort, after=lp.after
            )
        return json_response({"data": rows, "meta": lp.meta(rows, total)})

    return routes
