"""Settings of the catalog service (imported before any metric exists)."""

from __future__ import annotations

from lib.config import ServiceSettings

SERVICE = "catalog"


class CatalogSettings(ServiceSettings):
    port: int = 8103
    database_url: str = "postgresql://postgres@127.0.0.1:5432/fixup_catalog"
    db_pool_reset: bool = False  # no handler changes session state (ADR 0005)
