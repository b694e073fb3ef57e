"""Settings of the catalog service (imported before any metric exists)."""

from __future__ import annotations

from typing import ClassVar

from lib.config import ServiceSettings
from lib.erasure import ErasureSettings

SERVICE = "catalog"


class CatalogSettings(ServiceSettings, ErasureSettings):
    registry_name: ClassVar[str] = SERVICE  # port and database: lib/registry.py
    db_pool_reset: bool = False  # no handler changes session state (ADR 0005)
