"""Idempotency-Key for creating POSTs: a repeat replays the first response (24 h).

The same key from the same caller creates nothing new; with another request it is a 409.

The store is the service's own `idempotency_keys` table, through the queries generated from
`sql/common/idempotency.sql`, which each such database's sqlc.yaml lists (passed in: lib
never imports a service). Every idempotent create is a handler under `@idempotent(queries)`
(itself under `@operation`). The decorator first looks for a finished request with the
same key on a short connection, without a lock: a replay is answered before the handler
runs, so it never asks another service (orders asks catalog) and never fails while that
one is down. Otherwise it opens a transaction, locks (caller, key) with an advisory lock,
looks again and runs the handler inside it: the handler's `db.acquire()`/`db.transaction()`
lend that same connection (the request's scope, lib.db.scope), so its writes and the saved
key commit together or not at all, and the request never holds more than one pooled
connection (a keyed create that asks another service holds it over the call; ADR 0047).
Concurrent duplicates wait on the lock for the first, then replay it.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from lib.errors import Conflict, FieldError, ValidationFailed
from lib.http.body import read_body
from lib.http.keys import CLIENT_IP, DB, principal_of

KEY = re.compile(r"^[\x21-\x7e]{1,255}\Z")  # visible ASCII
REPLAYED_HEADERS = ("Content-Type", "ETag", "Location")
Handler = Callable[[web.Request], Awaitable[web.Response]]


class StoredResponse(Protocol):
    request_hash: bytes
    status_code: int
    response_headers: Any
    response_body: bytes


class IdempotencyQueries(Protocol):
    """The generated module `services.<svc>.db.idempotency`."""

    async def lock_idempotency_key(self, conn: Any, *, caller: str, key: str) -> None: ...

    async def get_idempotency_key(
        self, conn: Any, *, caller: str, key: str
    ) -> StoredResponse | None: ...

    async def save_idempotency_key(
        self,
        conn: Any,
        *,
        caller: str,
        key: str,
        request_hash: bytes,
        status_code: int,
        response_headers: Any,
        response_body: bytes,
    ) -> None: ...


def caller_of(request: web.Request) -> str:
    principal = principal_of(request)
    if principal is not None:
        return f"user:{principal.user_id}"
    return f"ip:{request.get(CLIENT_IP)}"


async def request_digest(request: web.Request) -> bytes:
    body = await read_body(request)  # aiohttp keeps it: the handler reads the same bytes
    return hashlib.sha256(f"{request.method} {request.path}\n".encode() + body).digest()


def idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not KEY.match(key):
        raise ValidationFailed(
            "invalid Idempotency-Key",
            errors=[FieldError("Idempotency-Key", "1..255 visible ASCII characters")],
        )
    return key


def answer_stored(stored: StoredResponse | None, digest: bytes) -> web.Response | None:
    if stored is None:
        return None
    if stored.request_hash != digest:
        raise Conflict("this Idempotency-Key was used for a different request")
    return replay(stored)


def idempotent(queries: IdempotencyQueries) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.Response:
            key = idempotency_key(request)
            if key is None:
                return await handler(request)
            caller, digest = caller_of(request), await request_digest(request)
            # finished: answered on a short connection (an in-flight one waits on the lock)
            async with request.app[DB].acquire() as conn:
                stored = await queries.get_idempotency_key(conn, caller=caller, key=key)
            if (answer := answer_stored(stored, digest)) is not None:
                return answer
            async with request.app[DB].transaction() as conn:
                await queries.lock_idempotency_key(conn, caller=caller, key=key)
                stored = await queries.get_idempotency_key(conn, caller=caller, key=key)
                if (answer := answer_stored(stored, digest)) is not None:
                    return answer
                response = await handler(request)
                if 200 <= response.status < 300 and isinstance(response.body, bytes):
                    headers = {
                        h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers
                    }
                    await queries.save_idempotency_key(
                        conn,
                        caller=caller,
                        key=key,
                        request_hash=digest,
                        status_code=response.status,
                        response_headers=headers,
                        response_body=response.body,
                    )
                return response

        return wrapper

    return decorate


def replay(stored: StoredResponse) -> web.Response:
    headers = dict(stored.response_headers or {})
    headers["Idempotent-Replayed"] = "true"
    return web.Response(status=stored.status_code, body=stored.response_body, headers=headers)
