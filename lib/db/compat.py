"""Compatibility shim for the pinned aiomysql 0.3.2 + PyMySQL 1.2.4.

aiomysql's `Connection.escape(bytes)` calls `pymysql.converters.escape_bytes_prefixed`,
which PyMySQL 1.2 replaced by a placeholder string, so every BLOB/BIT argument fails with
"'str' object is not callable" (aio-libs/aiomysql#1080). Point it at PyMySQL's
`escape_bytes` (the same `_binary X'..'` literal). Idempotent; imported by lib.db.runtime.
"""

from __future__ import annotations

import aiomysql.connection
import pymysql.converters


def patch_aiomysql_bytes_escape() -> None:
    if not callable(aiomysql.connection.escape_bytes_prefixed):
        aiomysql.connection.escape_bytes_prefixed = pymysql.converters.escape_bytes


patch_aiomysql_bytes_escape()
