"""A patch for aiomysql 0.3.2's `bytes` escaping with PyMySQL 1.2, applied on import.

Compatibility shim for the pinned aiomysql 0.3.2 + PyMySQL 1.2.4: importing it applies
codegen.runtime.patch_aiomysql_bytes_escape (aio-libs/aiomysql#1080), as importing the
generated code's runtime does."""

from __future__ import annotations

from codegen.runtime import patch_aiomysql_bytes_escape

__all__ = ["patch_aiomysql_bytes_escape"]
