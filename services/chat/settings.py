"""Settings of the chat service (imported before any metric exists)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from lib.clients.settings import OrdersClientSettings
from lib.config import ServiceSettings
from lib.erasure import ErasureSettings

SERVICE = "chat"


class ChatSettings(ServiceSettings, OrdersClientSettings, ErasureSettings):
    registry_name: ClassVar[str] = SERVICE  # port and database: lib/registry.py
    db_pool_reset: bool = False  # no handler changes session state (ADR 0005)
    # --- orders (who the participants of a new conversation are): its answers reused
    orders_cache_ttl: float = Field(5.0, ge=0, description="How long an answer is reused (s).")
    orders_cache_size: int = Field(10_000, ge=1)
    # --- WebSocket (ADR 0011)
    ws_ping_interval: float = Field(20.0, gt=0, description="Ping period; no pong -> closed.")
    ws_send_queue: int = Field(256, ge=1, le=100_000, description="Frames queued per socket.")
    ws_close_timeout: float = Field(2.0, gt=0, description="Wait for the peer's close (s).")
    ws_revocation_check: float = Field(
        1.0, gt=0, le=60, description="Open sockets checked against token revocations (s)."
    )
    # --- fan-out: Redis channel `<prefix><conversation id>` (tests give each run its own)
    channel_prefix: str = Field("fixup:chat:", min_length=1, max_length=100)
    fill_batch: int = Field(500, ge=1, le=10_000, description="Rows per gap-fill query.")
