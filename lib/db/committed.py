"""Actions that run once the transaction around them has committed (issue 43).

A domain counter (lib.db.facts.Facts) must count a fact once it is true: after the commit,
never for a rolled-back change. `after_commit(action)` runs `action` at once outside any
`Database.transaction()` of this task (a single statement commits by itself), else keeps
it until the outermost one commits; a transaction or savepoint that rolls back drops the
actions registered inside it. So the handler under `lib.http.idempotency.idempotent`
counts only when the decorator's transaction commits, and a replay, which never runs the
handler, counts nothing. An action may be async (chat's push of a stored message): it is
awaited when the outermost transaction commits, so it is registered inside one. A task
started inside a transaction shares its pending list (tasks copy the context): start it
with a `contextvars.Context()` of its own.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from typing import Any

Action = Callable[[], Awaitable[None] | None]
_pending: ContextVar[list[Action] | None] = ContextVar("fixup_after_commit", default=None)


def after_commit(action: Action) -> None:
    """Run `action` once this task's open transaction commits (at once if none is open)."""
    pending = _pending.get()
    if pending is not None:
        pending.append(action)
    elif inspect.iscoroutinefunction(action):
        raise RuntimeError("an async action is registered inside a transaction")
    else:
        action()


class Collecting:
    """Around one transaction (or savepoint), inside the connection's lease: its actions
    go to the enclosing one when it commits, run when it is the outermost, and are dropped
    when it fails."""

    __slots__ = ("mine", "outer", "token")

    async def __aenter__(self) -> None:
        self.outer = _pending.get()
        self.mine: list[Action] = []
        self.token: Token[list[Action] | None] = _pending.set(self.mine)

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        _pending.reset(self.token)
        if exc is not None:
            return
        if self.outer is not None:
            self.outer.extend(self.mine)
        else:
            for action in self.mine:
                if inspect.isawaitable(done := action()):
                    await done
