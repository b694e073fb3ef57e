"""The outbox carries the trace context: POST /v1/jobs/{id}/complete stores its span's
traceparent with the award, and the relay's delivery span - a trace of its own, whose
AddUserPoints call points serves - links to that request (real PostgreSQL, MariaDB, the
catalog and orders apps, the points gRPC server, a real OTLP/gRPC receiver)."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from lib.auth.principal import Role
from lib.db.connecting import connect
from lib.errors import ServiceUnavailable
from services.catalog.app import create_app as catalog_app
from services.orders.app import create_app as orders_app
from services.orders.db.models import Outbox
from services.orders.relay import OutboxRelay
from tests import pg
from tests.integration.catalog_support import catalog_settings
from tests.integration.orders_support import (
    caller,
    catalog_service,
    offer_body,
    order_body,
    orders_settings,
)
from tests.integration.points_support import running_points
from tests.integration.tracing_support import receiver  # noqa: F401  (the fixture)
from tests.otlp_receiver import Receiver

COMPLETE = "POST /v1/jobs/{id}/complete"
DELIVER = "outbox deliver points.award"
ADD_POINTS = "point.PointServer/AddUserPoints"


async def test_the_award_delivery_links_to_the_completing_request(
    receiver: Receiver,  # noqa: F811  (the fixture)
    migrated_db: Callable[[str], str],
    aiohttp_client: Any,
) -> None:
    orders_dsn, points_dsn = migrated_db("orders"), migrated_db("points")
    catalog = await aiohttp_client(catalog_app(catalog_settings(migrated_db("catalog"))))
    async with running_points(points_dsn) as points:
        settings = orders_settings(
            orders_dsn,
            catalog_url=str(catalog.make_url("")).rstrip("/"),
            points_grpc_addr=points.target,
            outbox_interval=0.05,
        )
        client = await aiohttp_client(orders_app(settings))
        customer, provider = caller(Role.CUSTOMER), caller(Role.PROVIDER)
        service_id = await catalog_service(catalog, provider.id)
        order = await client.post(
            "/v1/orders", json=order_body(service_id), headers=customer.headers
        )
        order_id = (await order.json())["data"]["id"]
        offer = await client.post(
            f"/v1/orders/{order_id}/offers", json=offer_body(), headers=provider.headers
        )
        offer_id = (await offer.json())["data"]["id"]
        accepted = await client.post(
            f"/v1/orders/{order_id}/offers/{offer_id}/accept", headers=customer.headers
        )
        job_id = (await accepted.json())["data"]["id"]
        started = await client.post(f"/v1/jobs/{job_id}/start", headers=provider.headers)
        assert started.status == 200, await started.text()
        done = await client.post(f"/v1/jobs/{job_id}/complete", headers=provider.headers)
        assert done.status == 200, await done.text()

        def delivered(r: Receiver) -> bool:
            names = {s.name for s in r.spans}
            return {COMPLETE, DELIVER} <= names and ADD_POINTS in names

        await receiver.wait_for(delivered, "the completing request and the award's delivery")
        assert await points.balance(str(provider.id)) == settings.points_per_job

    (completing,) = [s for s in receiver.spans if s.name == COMPLETE]
    # the outbox row holds that request's context
    stored = await pg.fetchval(
        orders_dsn, "SELECT traceparent FROM outbox WHERE aggregate_id = $1", job_id
    )
    assert stored == f"00-{completing.trace_id}-{completing.span_id}-03"  # sampled, random id
    # the delivery is a trace of its own, linked to the completing request
    (delivery,) = [s for s in receiver.spans if s.name == DELIVER]
    assert delivery.parent_id == ""
    assert delivery.trace_id != completing.trace_id
    assert delivery.links == ((completing.trace_id, completing.span_id),)
    # the AddUserPoints call and points' handling of it are inside the delivery's trace
    calls = [s for s in receiver.in_trace(delivery.trace_id) if s.name == ADD_POINTS]
    client_call = next(s for s in calls if s.parent_id == delivery.span_id)
    assert any(s.parent_id == client_call.span_id for s in calls), calls


class Refusing:
    """A points client whose call fails: with a problem, or with anything else."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def add_user_points(
        self, user_id: str, delta: int, reason: str, idempotency_key: str
    ) -> int:
        raise self.error


async def test_a_failed_delivery_is_a_failed_span(
    receiver: Receiver,  # noqa: F811  (the fixture)
    migrated_db: Callable[[str], str],
) -> None:
    db = await connect(migrated_db("orders"), min_size=1, max_size=2)
    now = datetime.datetime.now(datetime.UTC)
    try:
        for error, code in ((ServiceUnavailable("points is down"), "SERVICE_UNAVAILABLE"),
                            (RuntimeError("a bug"), "RuntimeError")):  # fmt: skip
            relay = OutboxRelay(db, Refusing(error), interval=1, retry_max=1, call_timeout=1)
            key = f"job:{uuid.uuid4()}"
            row = Outbox(
                id=1, topic="points.award", aggregate_id=uuid.uuid4(),
                payload={"user_id": str(uuid.uuid4()), "delta": 10, "reason": "job"},
                idempotency_key=key, attempts=0, available_at=now, delivered_at=None,
                last_error=None, created_at=now, traceparent=None,
            )  # fmt: skip
            with pytest.raises(type(error)):
                await relay.deliver(row)

            def arrived(r: Receiver, before: int = len(receiver.spans)) -> bool:
                return any(s.name == DELIVER for s in r.spans[before:])

            await receiver.wait_for(arrived, f"the failed delivery ({code})")
            failed = [s for s in receiver.spans if s.name == DELIVER][-1]
            assert failed.status_code == 2  # STATUS_CODE_ERROR
            assert failed.attributes["error.type"] == code
            assert key not in str(failed.attributes)
    finally:
        await db.close()
