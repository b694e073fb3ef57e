"""One pooled connection per request: the rule that keeps a full pool from deadlocking.

A request that holds a connection and waits for a second one deadlocks as soon as every
connection is held by such a request (10 concurrent idempotent creates did exactly that
with a pool of 10). So each request or RPC runs in a *scope* (`enter_scope()`: the HTTP
middleware and the gRPC adapter enter one): inside it, `Database.acquire()` and
`Database.transaction()` lend the scope's connection again when the task that holds it
asks (nested use: the idempotency decorator's transaction, then the handler's query), and
raise `SecondConnectionError` when another task of the same request asks while it is held
(concurrent use would need a second connection). Outside a scope (tools, background jobs)
every acquire takes its own connection.

A task that outlives its request (a background job) must enter a scope of its own.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar, Token
from typing import Any


class SecondConnectionError(RuntimeError):
    """A request asked for a second pooled connection while it holds one (a bug)."""


class Scope:
    """The connection a request holds, if any, and the task that holds it."""

    __slots__ = ("conn", "database", "owner")

    def __init__(self) -> None:
        self.conn: Any = None
        self.database: object | None = None
        self.owner: asyncio.Task[Any] | None = None


_current: ContextVar[Scope | None] = ContextVar("fixup_db_scope", default=None)


def enter_scope() -> Token[Scope | None]:
    """Start a request's scope; child tasks share it (they copy the context)."""
    return _current.set(Scope())


def exit_scope(token: Token[Scope | None]) -> None:
    _current.reset(token)


def current_scope() -> Scope | None:
    return _current.get()
