"""The chat service's domain counters (lib.db.facts.Facts), labelled by bounded values
only; `create_app` starts them at 0."""

from __future__ import annotations

from lib.db.facts import Facts

MESSAGES = Facts(
    "chat_messages_total",
    "Messages stored (committed), by how they came: a POST or a WebSocket frame.",
    via=("http", "websocket"),
)
DELIVERED = Facts(
    "chat_messages_delivered_total",
    "Message frames written to a WebSocket of this process (one per socket per message).",
)
ALL = (MESSAGES, DELIVERED)
