"""Read-back helpers: a fingerprint of every table of a PostgreSQL database, to prove a
refused request changed nothing."""

from __future__ import annotations

from tests import pg


async def fingerprint(dsn: str) -> dict[str, str]:
    """table -> md5 of all its rows in a stable order."""
    async with pg.connected(dsn) as conn:
        tables = [
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return {
            table: await conn.fetchval(
                f"SELECT md5(coalesce(string_agg(t::text, chr(10) ORDER BY t::text), '')) "
                f'FROM "{table}" t'
            )
            for table in tables
        }
