"""What code generated for `driver: aiosqlite` imports besides the package itself: the connection
alias, in a module of its own so that a project without aiosqlite never imports it."""

from __future__ import annotations

from typing import TypeAlias

import aiosqlite

AiosqliteConn: TypeAlias = aiosqlite.Connection
