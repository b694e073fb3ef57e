"""Settings of the orders service (imported before any metric exists)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from lib.clients.settings import (
    CatalogClientSettings,
    PointsClientSettings,
    UsersClientSettings,
)
from lib.config import ServiceSettings
from lib.erasure import ErasureSettings

SERVICE = "orders"


class OrdersSettings(
    ServiceSettings,
    CatalogClientSettings,
    UsersClientSettings,
    PointsClientSettings,
    ErasureSettings,
):
    registry_name: ClassVar[str] = SERVICE  # port and database: lib/registry.py
    db_pool_reset: bool = False  # no handler changes session state (ADR 0005)
    # --- points (the outbox relay's AddUserPoints); no POINTS_GRPC_ADDR: no relay here
    points_timeout: float = Field(2.0, gt=0, description="Deadline of one AddUserPoints (s).")
    points_per_job: int = Field(10, ge=1, le=1_000_000)
    outbox_interval: float = Field(2.0, gt=0, description="Relay poll period (s).")
    outbox_batch: int = Field(20, ge=1, le=1000)
    outbox_retry_max: float = Field(60.0, gt=0, description="Longest wait between attempts.")
