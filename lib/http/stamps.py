"""What a conditional GET declares as its stamp: an item's or a list's (ADR 0019).

`@operation(conditional=...)` takes an item's `Stamp`, read on a connection, or a list's
`ListStamp`, read once for the requests that arrive together; lib/http/conditional.py
answers both."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from aiohttp import web

# reads the current tag of what a GET answers, on `conn`; None: no such resource
Stamp = Callable[[web.Request, Any], Awaitable[str | None]]


class ListStamp(ABC):
    """A list's stamp, read once for the requests that arrive together (a `SharedRead`,
    ADR 0038): `state` is what a kept page's freshness is compared with, `tag` the ETag it
    names for one request."""

    @abstractmethod
    async def state(self, request: web.Request) -> Hashable | None:
        """The current state; None when it cannot be known now (no 304, nothing kept)."""

    @abstractmethod
    def tag(self, state: Hashable, request: web.Request) -> str:
        """The ETag of this request's page under `state`."""
