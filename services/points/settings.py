"""Settings of the points service (imported before any metric exists)."""

from __future__ import annotations

from pydantic import Field

from lib.config import ServiceSettings

SERVICE = "points"


class PointsSettings(ServiceSettings):
    """`PORT` (POINTS_PORT) is the HTTP side port (/metrics, /health, /ready); gRPC listens
    on `GRPC_PORT` (POINTS_GRPC_PORT)."""

    port: int = Field(9105, ge=1, le=65535)
    grpc_port: int = Field(50051, ge=0, le=65535)
    database_url: str = "mysql://root@127.0.0.1:3306/fixup_points"
    max_list_ids: int = Field(1000, ge=1)  # ids per GetUserListPoints (a page is <= 1000)
