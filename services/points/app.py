"""The points process: the gRPC server and its HTTP side app (lib/grpc/process.py), which
lists the events of AddUserPoints for ADMIN (GET /v1/audit-events, ADR 0057)."""

from __future__ import annotations

from aiohttp import web

from lib.grpc.process import grpc_app
from services.points import facts
from services.points.db import audit
from services.points.service import PointService
from services.points.settings import PointsSettings


def create_app(settings: PointsSettings) -> web.Application:
    for counter in facts.ALL:
        counter.start(settings.service)  # at 0 from start-up (lib/metrics.py)
    return grpc_app(
        settings,
        lambda db: [PointService(db, max_list_ids=settings.max_list_ids, service=settings.service)],
        title="Fixup points (side port)",
        audit=audit,
    )
