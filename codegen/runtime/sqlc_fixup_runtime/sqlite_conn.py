"""What code generated for `driver: sqlite3` imports besides the package itself: the connection
alias (the standard library's sqlite3, nothing to install)."""

from __future__ import annotations

import sqlite3
from typing import TypeAlias

SqliteConn: TypeAlias = sqlite3.Connection
