"""Shared helpers of the orders tests: settings, callers, and a catalog with one service
that one provider offers (the real catalog app, behind a proxy a test can take away)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from services.orders.settings import OrdersSettings
from tests.integration.auth_support import KEYS, TEST_TOKEN_TTL, bearer, service_settings
from tests.integration.catalog_support import chain

T0 = datetime(2031, 5, 1, 9, 0, tzinfo=UTC)


def orders_settings(dsn: str, **overrides: Any) -> OrdersSettings:
    defaults: dict[str, Any] = {
        "users_url": "http://127.0.0.1:9",  # discard port: users unreachable unless set
        "points_grpc_addr": "",  # no relay unless a test runs one
    }
    return service_settings(OrdersSettings, "orders", dsn, **(defaults | overrides))


@dataclass(frozen=True)
class Caller:
    id: uuid.UUID
    headers: dict[str, str]


def caller(role: Role, *, verified: bool = True) -> Caller:
    user_id = uuid.uuid4()
    value, _ = TokenSigner(KEYS[0], TEST_TOKEN_TTL).issue(user_id, role, verified)
    return Caller(user_id, {"Authorization": f"Bearer {value}"})


def order_body(service_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "service_id": service_id,
        "description": "The kitchen tap drips",
        "address": "1 Test Road, Springfield",
        "time_start": T0.isoformat(),
        "time_end": (T0 + timedelta(hours=2)).isoformat(),
        **overrides,
    }


def offer_body(**overrides: Any) -> dict[str, Any]:
    return {
        "price": "95.50",
        "currency": "EUR",
        "book_time": T0.isoformat(),
        "message": "I can come at nine",
        **overrides,
    }


async def catalog_service(catalog: Any, *providers: uuid.UUID) -> str:
    """A new service in the catalog, offered by `providers`; its id."""
    made = await chain(catalog)
    service_id: str = made["service"]["id"]
    for provider in providers:
        resp = await catalog.put(
            f"/v1/providers/{provider}/services/{service_id}", headers=bearer(Role.ADMIN)
        )
        assert resp.status == 204, await resp.text()
    return service_id
