"""The chat API's input models, and the output shapes for the OpenAPI document."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lib.http.listing import ListQuery

# 1..4000 code points once trimmed (str.strip(): what migrations/chat's CHECK trims too);
# several lines allowed; no NUL (PostgreSQL text cannot hold it) nor other C0 controls but
# tab, LF and CR.
Body = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=4000,
        pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$",
    ),
]
READ_ONLY = frozenset(
    {"id", "conversation_id", "author_id", "customer_id", "cursor", "created_at", "last_message_at"}
)


class ConversationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: uuid.UUID
    provider_id: uuid.UUID = Field(description="A provider with an offer (or job) on the order.")


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Body


class SendFrame(MessageCreate):
    """Client -> server on the WebSocket: stored like a POST, then pushed to every socket."""

    type: Literal["send"]


class ConversationListQuery(ListQuery):
    """limit, page, orderby (created_at | last_message_at: the last activity), sort
    (default desc)."""

    orderby: Literal["created_at", "last_message_at"] | None = Field(
        None, description="created_at, or last_message_at (no message yet: created_at)."
    )
    sort: Literal["asc", "desc"] = Field("desc", description="Sort direction; newest first.")


class MessageListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    before: str | None = Field(
        None, description="A message's cursor: older messages, newest first (the default)."
    )
    after: str | None = Field(
        None, description="A message's cursor: newer messages, oldest first (catch-up)."
    )
    limit: int = Field(100, ge=1, le=1000, description="Page size, 1..1000.")


class Conversation(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    customer_id: uuid.UUID
    provider_id: uuid.UUID
    created_at: datetime
    last_message_at: datetime | None


class Message(BaseModel):
    id: uuid.UUID
    conversation_id: uuid.UUID
    author_id: uuid.UUID
    body: str
    cursor: str = Field(description="Opaque; `after=<cursor>` continues from this message.")
    created_at: datetime
