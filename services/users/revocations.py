"""Ending every session of an account, and the record other services fall back to
(ADR 0010). The record is the users database: `end_sessions` writes the not-before time
with PostgreSQL's clock in the caller's transaction and copies it to Redis (the fast path;
Redis refusing it fails the transaction, nothing changed). GET /v1/auth/revocation answers
the record of the token's own account: the other services ask it, with the token they
check, while Redis is away; this service reads its database directly."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from lib.auth.revocation import ceil_ms
from lib.db.runtime import PgConn
from lib.http.access import EVERY_ROLE
from lib.http.guards import authenticated
from lib.http.jsonio import data
from lib.http.keys import DB, REVOCATIONS
from lib.http.openapi import operation
from services.users.auth_kit import AUTH_TAGS
from services.users.auth_schemas import RevocationOut
from services.users.db import auth as q

routes = web.RouteTableDef()


async def end_sessions(app: web.Application, conn: PgConn, user_id: uuid.UUID) -> int:
    """Void every access token of `user_id` issued until now (the database's clock); the
    not-before time (ms). 503 RevocationUnavailable when Redis does not take the copy."""
    await q.share_revocation_lock(conn)  # until COMMIT: a restore waits for this copy
    moment = await q.record_revocation(conn, user_id=user_id)
    assert moment is not None  # INSERT ... RETURNING: always a row
    return await app[REVOCATIONS].revoke(user_id, ceil_ms(moment))


async def recorded(app: web.Application, user_id: uuid.UUID) -> int:
    """The record's not-before time of `user_id` (ms; 0: none)."""
    async with app[DB].acquire() as conn:
        rows = await q.revocations_of(conn, user_ids=[user_id])
    return ceil_ms(rows[0].not_before) if rows else 0


async def record_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: this service's fallback while Redis is away is its own database."""

    async def from_database(subject: uuid.UUID, token: str) -> int:
        return await recorded(app, subject)

    app[REVOCATIONS].fallback = from_database
    yield


@routes.get("/v1/auth/revocation")
@operation(
    "My revocation record",
    tags=AUTH_TAGS,
    response=RevocationOut,
    roles=EVERY_ROLE,
    errors=(503,),
    description="When the sessions of the token's own account were last ended (password "
    "change or reset, deletion): tokens issued before it are void. The services ask it with "
    "the token they check while Redis is away; a revoked token gets 401 here too.",
)
async def my_revocation(request: web.Request) -> web.Response:
    principal = authenticated(request)
    not_before = await recorded(request.app, principal.user_id)
    return data({"user_id": principal.user_id, "not_before_ms": not_before})
