"""Settings of the orders service (imported before any metric exists)."""

from __future__ import annotations

from pydantic import Field

from lib.config import ServiceSettings

SERVICE = "orders"


class OrdersSettings(ServiceSettings):
    port: int = 8104
    database_url: str = "postgresql://postgres@127.0.0.1:5432/fixup_orders"
    db_pool_reset: bool = False  # no handler changes session state (ADR 0005)
    # --- catalog (the service of an order, the services a provider offers)
    catalog_url: str = "http://127.0.0.1:8103"
    catalog_timeout: float = Field(1.0, gt=0, description="Deadline of one attempt (s).")
    catalog_breaker_threshold: int = Field(3, ge=1)
    catalog_breaker_reset: float = Field(10.0, gt=0)
    # --- users (the customer's name snapshot; optional: down -> no snapshot)
    users_url: str = "http://127.0.0.1:8102"
    users_timeout: float = Field(0.5, gt=0, description="Deadline of one attempt (s).")
    users_breaker_threshold: int = Field(3, ge=1)
    users_breaker_reset: float = Field(10.0, gt=0)
    # --- points (the outbox relay's AddUserPoints); empty: no relay in this process
    points_grpc_addr: str = "127.0.0.1:50051"
    points_timeout: float = Field(2.0, gt=0, description="Deadline of one AddUserPoints (s).")
    points_per_job: int = Field(10, ge=1, le=1_000_000)
    outbox_interval: float = Field(2.0, gt=0, description="Relay poll period (s).")
    outbox_batch: int = Field(20, ge=1, le=1000)
    outbox_retry_max: float = Field(60.0, gt=0, description="Longest wait between attempts.")
