"""A person's part of their data export (lib/http/export.py, ADR 0059): the conversations
they take part in and the messages they wrote (not the other party's)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from lib.http import export
from lib.http.jsonio import data
from lib.http.keys import DB
from lib.http.openapi import operation
from services.chat.db import export as q
from services.chat.db import models

routes = web.RouteTableDef()


@dataclass(frozen=True)
class ChatExport:
    """Every row of chat's tables that names the person, one list per table."""

    conversations: list[models.Conversation]
    messages: list[models.Message]


@routes.get(export.PATH)
@operation(
    "Export a person's chat data",
    tags=["export"],
    response=ChatExport,
    errors=export.ERRORS,
    description=export.DESCRIPTION,
    **export.ACCESS,
)
async def export_user(request: web.Request) -> web.Response:
    _, user_id = export.subject(request)
    limit = export.row_limit(request)
    async with request.app[DB].acquire() as conn:
        conversations = await q.export_conversations(conn, user_id=user_id, row_limit=limit)
        messages = await q.export_messages(conn, user_id=user_id, row_limit=limit)
    part = ChatExport(
        conversations=export.bounded(request, "conversations", conversations),
        messages=export.bounded(request, "messages", messages),
    )
    return data(part)
