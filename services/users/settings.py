"""Settings of the users service (imported before any metric exists)."""

from __future__ import annotations

from pydantic import Field

from lib.config import ServiceSettings

SERVICE = "users"


class UsersSettings(ServiceSettings):
    port: int = 8102
    database_url: str = "postgresql://postgres@127.0.0.1:5432/fixup_users"
    db_pool_reset: bool = False  # no handler changes session state (ADR 0005)
    points_grpc_addr: str = "127.0.0.1:50051"
    points_grpc_pool_size: int = Field(4, ge=1, le=64)
    points_timeout: float = Field(0.5, gt=0, description="Deadline of one points call (s).")
    points_breaker_threshold: int = Field(3, ge=1)
    points_breaker_reset: float = Field(10.0, gt=0)
