"""Settings of the points service (imported before any metric exists)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from lib.config import GrpcServiceSettings

SERVICE = "points"


class PointsSettings(GrpcServiceSettings):
    """`PORT` (POINTS_PORT) is the HTTP side port (/metrics, /health, /ready); gRPC listens
    on `GRPC_PORT` (POINTS_GRPC_PORT); both and the database default to lib/registry.py."""

    registry_name: ClassVar[str] = SERVICE
    max_list_ids: int = Field(1000, ge=1)  # ids per GetUserListPoints (a page is <= 1000)
