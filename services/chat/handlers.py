"""Conversations and their messages over HTTP (docs/api.md, "chat").

Who takes part is settled once, when a conversation is created: orders says who the
order's customer is and which providers have an offer on it (asked with the caller's
token, before any connection is taken: ADR 0005). The conversation row keeps the pair;
every later route compares the caller with it, so reading and writing messages never
waits for orders. Anyone else gets 404.
"""

from __future__ import annotations

import functools
import uuid

from aiohttp import web

from lib.auth.principal import Principal
from lib.clients.orders import OrderParties
from lib.db.committed import after_commit
from lib.db.runtime import PgConn
from lib.errors import FieldError, NotFound, ValidationFailed
from lib.http.body import parse_body
from lib.http.cursor import list_page
from lib.http.guards import authenticated, path_uuid
from lib.http.idempotency import idempotent
from lib.http.jsonio import data, json_response
from lib.http.keys import DB
from lib.http.listing import parse_query
from lib.http.openapi import operation
from services.chat import schemas as s
from services.chat.db import chat as q
from services.chat.db import idempotency as idem_q
from services.chat.db import models
from services.chat.deps import CHAT_SETTINGS, HUB, order_parties
from services.chat.facts import MESSAGES
from services.chat.messages import MAX_SEQ, message_json, seq_of, store

routes = web.RouteTableDef()
TAGS = ["conversations"]
ROLES = ("CUSTOMER", "PROVIDER")
PARTICIPANT = "a participant (the order's customer or the provider)"  # checked on the row


def conversation_json(row: models.Conversation) -> dict[str, object]:
    return {
        "id": row.id,
        "order_id": row.order_id,
        "customer_id": row.customer_id,
        "provider_id": row.provider_id,
        "created_at": row.created_at,
        "last_message_at": row.last_message_at,
    }


def takes_part(principal: Principal, row: models.Conversation) -> bool:
    return principal.user_id in (row.customer_id, row.provider_id)


async def participant_conversation(
    conn: PgConn, principal: Principal, conversation_id: uuid.UUID
) -> models.Conversation:
    """The conversation if the caller takes part in it, else 404."""
    row = await q.get_conversation(conn, id=conversation_id)
    if row is None or not takes_part(principal, row):
        raise NotFound("no such conversation")
    return row


def one(row: models.Conversation, status: int = 200) -> web.Response:
    headers = {"Location": f"/v1/conversations/{row.id}"} if status == 201 else None
    return data(conversation_json(row), status=status, headers=headers)


@routes.post("/v1/conversations")
@operation(
    "Start a conversation",
    tags=TAGS,
    response=s.Conversation,
    status=201,
    also=(200,),
    body=s.ConversationCreate,
    roles=ROLES,
    owner="the order's customer or a provider with an offer or job on it",
    idempotent=True,
    errors=(400, 404, 503),
    description=(
        "Between the order's customer and a provider with an offer (or a job) on it; "
        "either of them may start it. 201 when created, 200 with the existing one (an "
        "Idempotency-Key repeats the first answer, whichever it was). The "
        "order and its offers are read from orders with the caller's token (cached a few "
        "seconds); an order the caller may not see, or a provider without an offer: 404; "
        "orders unreachable: 503."
    ),
)
@idempotent(idem_q)  # a replay: the first answer (201 or 200), without asking orders again
async def create_conversation(request: web.Request) -> web.Response:
    principal = authenticated(request)
    body = await parse_body(request, s.ConversationCreate, forbidden=s.READ_ONLY)
    async with request.app[DB].acquire() as conn:
        existing = await q.find_conversation(
            conn, order_id=body.order_id, provider_id=body.provider_id
        )
    if existing is not None and takes_part(principal, existing):
        return one(existing)  # nothing to ask orders: the pair was checked at creation

    def admits(parties: OrderParties | None) -> bool:
        return (
            parties is not None
            and principal.user_id in (parties.customer_id, body.provider_id)
            and body.provider_id in parties.providers
            and body.provider_id != parties.customer_id
        )

    parties = await order_parties(request, body.order_id, admits)
    if parties is None or principal.user_id not in (parties.customer_id, body.provider_id):
        raise NotFound(f"no such order: order_id {body.order_id}")
    if not admits(parties):
        raise NotFound(f"no offer on this order from provider_id {body.provider_id}")
    customer_id = parties.customer_id
    async with request.app[DB].acquire() as conn:
        row = await q.create_conversation(
            conn, order_id=body.order_id, customer_id=customer_id, provider_id=body.provider_id
        )
        if row is not None:
            return one(row, status=201)
        row = await q.find_conversation(conn, order_id=body.order_id, provider_id=body.provider_id)
    assert row is not None  # the conflict was this row; conversations are never deleted
    return one(row)


@routes.get("/v1/conversations")
@operation(
    "List my conversations",
    tags=TAGS,
    response=s.Conversation,
    paged=True,
    query=s.ConversationListQuery,
    roles=ROLES,
    errors=(400,),
    description=(
        "The caller's, as customer or as provider. Default order: created_at desc; "
        "last_message_at orders by the last activity."
    ),
)
async def list_conversations(request: web.Request) -> web.Response:
    principal = authenticated(request)
    lp = list_page(request, q.LIST_CONVERSATIONS_SORTING, s.ConversationListQuery)
    async with request.app[DB].acquire() as conn:
        total = await q.count_conversations(conn, user_id=principal.user_id) or 0
        rows = await q.list_conversations(
            conn, user_id=principal.user_id, orderby=lp.orderby, sort=lp.sort, after=lp.after,
            row_limit=lp.limit, row_offset=lp.offset,
        )  # fmt: skip
    meta = lp.meta(rows, total)
    return json_response({"data": [conversation_json(r) for r in rows], "meta": meta})


@routes.get("/v1/conversations/{id}")
@operation(
    "Get a conversation",
    tags=TAGS,
    response=s.Conversation,
    roles=ROLES,
    owner=PARTICIPANT,
    errors=(400, 404),
    description="Its customer and its provider; anyone else: 404.",
)
async def get_conversation(request: web.Request) -> web.Response:
    principal = authenticated(request)
    async with request.app[DB].acquire() as conn:
        row = await participant_conversation(conn, principal, path_uuid(request))
    return one(row)


@routes.get("/v1/conversations/{id}/messages")
@operation(
    "List messages",
    tags=["messages"],
    response=s.Message,
    cursor_paged=True,
    query=s.MessageListQuery,
    roles=ROLES,
    owner=PARTICIPANT,
    errors=(400, 404),
    description=(
        "Keyset pages. No cursor or `before`: newest first; `after`: oldest first (the "
        "catch-up after a reconnect: `after=<cursor of the last message seen>`); both: "
        "400. `meta.next_cursor` continues in the same direction, null at the end. "
        "Messages are numbered per conversation without gaps, so no page skips a message "
        "that commits while a client pages."
    ),
)
async def list_messages(request: web.Request) -> web.Response:
    principal = authenticated(request)
    conversation_id = path_uuid(request)
    query = parse_query(request, s.MessageListQuery)
    if query.before is not None and query.after is not None:
        raise ValidationFailed(
            "give before or after, not both",
            errors=[FieldError("after", "not together with before")],
        )
    size = query.limit + 1  # one more: is there a next page?
    async with request.app[DB].acquire() as conn:
        await participant_conversation(conn, principal, conversation_id)
        if query.after is not None:
            rows = await q.messages_after(
                conn,
                conversation_id=conversation_id,
                after_seq=seq_of(query.after, "after"),
                page_size=size,
            )
        else:
            before = MAX_SEQ if query.before is None else seq_of(query.before, "before")
            rows = await q.messages_before(
                conn, conversation_id=conversation_id, before_seq=before, page_size=size
            )
    page = [message_json(row) for row in rows[: query.limit]]
    next_cursor = page[-1]["cursor"] if len(rows) > query.limit else None
    return json_response({"data": page, "meta": {"limit": query.limit, "next_cursor": next_cursor}})


@routes.post("/v1/conversations/{id}/messages")
@operation(
    "Post a message",
    tags=["messages"],
    response=s.Message,
    status=201,
    body=s.MessageCreate,
    roles=ROLES,
    owner=PARTICIPANT,
    idempotent=True,
    errors=(400, 404, 503),
    description=(
        "`body`: 1..4000 characters (code points) once trimmed, no NUL or other control "
        "characters but tab and line breaks. Pushed to every socket of the conversation "
        "on every replica once stored."
    ),
)
@idempotent(idem_q)
async def post_message(request: web.Request) -> web.Response:
    principal = authenticated(request)
    conversation_id = path_uuid(request)
    body = await parse_body(request, s.MessageCreate, forbidden=s.READ_ONLY)
    async with request.app[DB].transaction() as conn:
        await participant_conversation(conn, principal, conversation_id)
        row = await store(conn, conversation_id, principal.user_id, body.body)
        MESSAGES.count(request.app[CHAT_SETTINGS].service, via="http")
        # pushed once committed (never before: a rolled-back number is handed out again)
        after_commit(functools.partial(request.app[HUB].publish, row))
    return data(message_json(row), status=201)
