"""The points service on a real grpc.aio server on loopback, over a migrated MariaDB db."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from lib.db.connecting import connect
from lib.db.pool import Database
from lib.grpc.client import ChannelPool
from lib.grpc.server import GrpcServer, serve
from lib.pb.point import (
    AddPointsRequest,
    PointReply,
    PointRequest,
    UserListPointResponse,
    UserListRequest,
)
from services.points.db import points as q
from services.points.service import PointService
from tests.proxy import TcpProxy
from tools.time_scale import scaled

SERVICE = "/point.PointServer/"
GET = SERVICE + "GetUserPoints"


@dataclass
class Points:
    server: GrpcServer
    db: Database
    pool: ChannelPool

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    async def get(self, user_id: str, **kw: Any) -> PointReply:
        call = self.pool.unary(SERVICE + "GetUserPoints", PointReply.parse)
        return await call(PointRequest(user_id=user_id), timeout=5, **kw)

    async def list(self, user_ids: list[str], **kw: Any) -> UserListPointResponse:
        call = self.pool.unary(SERVICE + "GetUserListPoints", UserListPointResponse.parse)
        return await call(UserListRequest(user_ids=user_ids), timeout=5, **kw)

    async def add(
        self, user_id: str, delta: int, reason: str = "job done", key: str | None = None, **kw: Any
    ) -> PointReply:
        call = self.pool.unary(SERVICE + "AddUserPoints", PointReply.parse)
        request = AddPointsRequest(
            user_id=user_id,
            delta=delta,
            reason=reason,
            idempotency_key=uuid.uuid4().hex if key is None else key,
        )
        return await call(request, timeout=scaled(10), **kw)

    async def seed(self, balances: dict[str, int]) -> None:
        async with self.db.transaction() as conn:
            await q.set_user_points(
                conn, [q.SetUserPointsParams(user_id=u, points=p) for u, p in balances.items()]
            )

    async def balance(self, user_id: str) -> int | None:
        async with self.db.acquire() as conn:
            return await q.get_user_points(conn, user_id=user_id)

    async def ledger_rows(self, user_id: str) -> int:
        async with self.db.acquire() as conn, conn.cursor() as cur:
            await cur.execute("SELECT count(*) FROM points_ledger WHERE user_id = %s", (user_id,))
            (count,) = await cur.fetchone()
            return int(count)


@asynccontextmanager
async def running_points(
    dsn: str, *, max_size: int = 30, acquire_timeout: float = 3.0
) -> AsyncIterator[Points]:
    db = await connect(dsn, min_size=1, max_size=max_size, acquire_timeout=acquire_timeout)
    server = await serve([PointService(db)], host="127.0.0.1", port=0)
    pool = ChannelPool(f"127.0.0.1:{server.port}", 2)
    try:
        yield Points(server, db, pool)
    finally:
        await pool.close()
        await server.stop(0)
        await db.close()


def new_id() -> str:
    return str(uuid.uuid4())


class CountingProxy(TcpProxy):
    """A TcpProxy that counts the TCP connections clients open through it."""

    accepted = 0

    async def _serve(self, reader: Any, writer: Any) -> None:
        self.accepted += 1
        await super()._serve(reader, writer)


def log_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a log file (the `points_log` fixture's)."""
    return [orjson.loads(line) for line in path.read_text().splitlines()]
