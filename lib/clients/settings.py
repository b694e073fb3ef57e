"""The client settings of each dependency, declared once: a service lists the ones it calls.

`class OrdersSettings(ServiceSettings, CatalogClientSettings, UsersClientSettings)` reads
`CATALOG_URL`, `CATALOG_TIMEOUT`, `CATALOG_BREAKER_THRESHOLD`, `CATALOG_BREAKER_RESET`, ...
(`ORDERS_CATALOG_URL` first, lib/config.py); `dependency_client("catalog", settings)`
(lib/clients/http.py) builds the client from them. Addresses default to the ports of
lib/registry.py. A service that needs another deadline redeclares that one field.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from lib import registry

Timeout = Annotated[float, Field(gt=0, description="Deadline of one attempt (s).")]
BreakerThreshold = Annotated[
    int, Field(ge=1, description="Failures in a row that open the circuit breaker.")
]
BreakerReset = Annotated[
    float, Field(gt=0, description="How long an open breaker refuses calls before a trial (s).")
]


class DepartmentsClientSettings(BaseModel):
    """users -> departments: does a department exist (down -> 503)."""

    departments_url: str = registry.get("departments").local_url
    departments_timeout: Timeout = 1.0
    departments_breaker_threshold: BreakerThreshold = 3
    departments_breaker_reset: BreakerReset = 10.0


class UsersClientSettings(BaseModel):
    """orders -> users: the customer's name snapshot (optional: down -> no snapshot)."""

    users_url: str = registry.get("users").local_url
    users_timeout: Timeout = 0.5
    users_breaker_threshold: BreakerThreshold = 3
    users_breaker_reset: BreakerReset = 10.0


class CatalogClientSettings(BaseModel):
    """orders -> catalog: the service of an order, the services a provider offers; users ->
    catalog: a provider's part of their data export (ADR 0059)."""

    catalog_url: str = registry.get("catalog").local_url
    catalog_timeout: Timeout = 1.0
    catalog_breaker_threshold: BreakerThreshold = 3
    catalog_breaker_reset: BreakerReset = 10.0


class OrdersClientSettings(BaseModel):
    """chat -> orders: who the participants of a conversation are (down -> 503); users ->
    orders: a person's part of their data export (ADR 0059)."""

    orders_url: str = registry.get("orders").local_url
    orders_timeout: Timeout = 1.0
    orders_breaker_threshold: BreakerThreshold = 3
    orders_breaker_reset: BreakerReset = 10.0


class ChatClientSettings(BaseModel):
    """users -> chat: a person's part of their data export (down -> 503, ADR 0059)."""

    chat_url: str = registry.get("chat").local_url
    chat_timeout: Timeout = 1.0
    chat_breaker_threshold: BreakerThreshold = 3
    chat_breaker_reset: BreakerReset = 10.0


class PointsClientSettings(BaseModel):
    """The points service over gRPC (lib/clients/points.py); an empty address: no client."""

    points_grpc_addr: str = registry.get("points").local_grpc_addr
    points_grpc_pool_size: int = Field(4, ge=1, le=64, description="Channels in the pool.")
    points_timeout: Timeout = 0.5
    points_breaker_threshold: BreakerThreshold = 3
    points_breaker_reset: BreakerReset = 10.0
