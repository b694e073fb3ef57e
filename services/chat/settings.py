"""Settings of the chat service (imported before any metric exists)."""

from __future__ import annotations

from pydantic import Field

from lib.config import ServiceSettings

SERVICE = "chat"


class ChatSettings(ServiceSettings):
    port: int = 8105
    database_url: str = "postgresql://postgres@127.0.0.1:5432/fixup_chat"
    db_pool_reset: bool = False  # no handler changes session state (ADR 0005)
    # --- orders (who the participants of a new conversation are; down -> 503)
    orders_url: str = "http://127.0.0.1:8104"
    orders_timeout: float = Field(1.0, gt=0, description="Deadline of one attempt (s).")
    orders_breaker_threshold: int = Field(3, ge=1)
    orders_breaker_reset: float = Field(10.0, gt=0)
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
