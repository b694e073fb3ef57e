"""Settings of the departments service (imported before any metric exists)."""

from __future__ import annotations

from lib.config import ServiceSettings

SERVICE = "departments"


class DepartmentsSettings(ServiceSettings):
    port: int = 8101
    database_url: str = "postgresql://postgres@127.0.0.1:5432/fixup_departments"
    db_pool_reset: bool = False  # no handler changes session state (ADR 0005)
