"""Offers on an order: make (verified PROVIDER offering the order's service), list,
withdraw (its provider), accept (the order's customer: offer ACCEPTED, the other PENDING
offers REJECTED, the order ASSIGNED and a job created, in one transaction).

Concurrent accepts on one order: AssignOrder locks the order row and moves it out of
OPEN, so the first to commit wins and every other matches no row (409).
"""

from __future__ import annotations

import asyncpg
from aiohttp import web

from lib.auth.principal import Role
from lib.errors import BadRequest, Conflict, FieldError, Forbidden
from lib.http.body import parse_body
from lib.http.cursor import list_page
from lib.http.guards import authenticated, path_uuid
from lib.http.idempotency import idempotent
from lib.http.jsonio import data, json_response
from lib.http.keys import DB
from lib.http.openapi import operation
from services.orders import facts
from services.orders import schemas as s
from services.orders.access import visible_order
from services.orders.db import idempotency as idem_q
from services.orders.db import jobs as jobs_q
from services.orders.db import models
from services.orders.db import offers as q
from services.orders.db import orders as orders_q
from services.orders.deps import CATALOG
from services.orders.handlers import ORDER_CUSTOMER, SEES_ORDER, refuse_owner_move
from services.orders.refusals import refuse_offer_move
from services.orders.settings import SERVICE

routes = web.RouteTableDef()
TAGS = ["offers"]
ITEM = "/v1/orders/{id}/offers/{offer_id}"


class _Refused(Exception):
    """Rolls the accept back: the offer was not PENDING on this order."""


@routes.post("/v1/orders/{id}/offers")
@operation(
    "Make an offer",
    tags=TAGS,
    response=models.Offer,
    status=201,
    body=s.OfferCreate,
    roles=("PROVIDER",),
    owner="a provider offering the order's service",
    verified=True,
    idempotent=True,
    errors=(400, 403, 404, 409, 502, 503),
    description=(
        "A verified PROVIDER who offers the order's service (catalog), on an OPEN order "
        "(else 409); one PENDING offer per provider per order (409). An unknown currency "
        "is a 400. Idempotency-Key as for orders (a replay does not ask catalog)."
    ),
)
@idempotent(idem_q)
async def create_offer(request: web.Request) -> web.Response:
    principal = authenticated(request)
    order_id = path_uuid(request)
    body = await parse_body(request, s.OfferCreate, forbidden=frozenset({"id", "status"}))
    order = await visible_order(request, order_id)
    offered = await request.app[CATALOG].services_of_provider(principal.user_id, caller=request)
    if order.service_id not in offered:
        raise Forbidden("you do not offer this order's service")
    try:
        async with request.app[DB].acquire() as conn:
            row = await q.create_offer(
                conn, order_id=order_id, provider_id=principal.user_id, **body.model_dump()
            )
    except asyncpg.UniqueViolationError:
        raise Conflict("you already have a PENDING offer on this order") from None
    except asyncpg.ForeignKeyViolationError:
        raise BadRequest(
            f"unknown currency: {body.currency}",
            errors=[FieldError("currency", "not a known ISO 4217 code")],
        ) from None
    if row is None:
        raise Conflict("the order is not OPEN")
    facts.OFFERS_MADE.count(SERVICE)
    headers = {"Location": f"/v1/orders/{order_id}/offers/{row.id}"}
    return data(row, status=201, headers=headers)


@routes.get("/v1/orders/{id}/offers")
@operation(
    "List the offers of an order",
    tags=TAGS,
    response=models.Offer,
    paged=True,
    query=s.OfferListQuery,
    roles=("CUSTOMER", "PROVIDER", "ADMIN"),
    owner=SEES_ORDER,
    any_owner=("ADMIN",),
    errors=(400, 404, 502, 503),
    description="The owner and ADMIN see all offers, a provider only theirs.",
)
async def list_offers(request: web.Request) -> web.Response:
    principal = authenticated(request)
    order_id = path_uuid(request)
    lp = list_page(request, q.LIST_OFFERS_SORTING, s.OfferListQuery)
    order = await visible_order(request, order_id)
    sees_all = principal.role is Role.ADMIN or order.customer_id == principal.user_id
    only = None if sees_all else principal.user_id
    async with request.app[DB].acquire() as conn:
        total = await q.count_offers(conn, order_id=order_id, provider_id=only) or 0
        rows = await q.list_offers(
            conn, order_id=order_id, provider_id=only, orderby=lp.orderby, sort=lp.sort,
            after=lp.after, row_limit=lp.limit, row_offset=lp.offset,
        )  # fmt: skip
    return json_response({"data": rows, "meta": lp.meta(rows, total)})


@routes.post(ITEM + "/withdraw")
@operation(
    "Withdraw an offer",
    tags=TAGS,
    response=models.Offer,
    roles=("PROVIDER",),
    owner="the offer's provider",
    idempotent=True,
    errors=(400, 403, 404, 409),
    description="Its provider, while PENDING (else 409).",
)
@idempotent(idem_q)
async def withdraw_offer(request: web.Request) -> web.Response:
    principal = authenticated(request)
    order_id, offer_id = path_uuid(request), path_uuid(request, "offer_id")
    async with request.app[DB].acquire() as conn:
        row = await q.withdraw_offer(
            conn, id=offer_id, order_id=order_id, provider_id=principal.user_id
        )
    if row is None:
        await refuse_offer_move(request, order_id, offer_id, owner=False)
    return data(row)


@routes.post(ITEM + "/accept")
@operation(
    "Accept an offer",
    tags=TAGS,
    response=jobs_q.GetJobRow,
    roles=("CUSTOMER",),
    owner=ORDER_CUSTOMER,
    idempotent=True,
    errors=(400, 403, 404, 409),
    description=(
        "The order's customer, on an OPEN order and a PENDING offer (else 409). In one "
        "transaction: the offer ACCEPTED, the other PENDING offers REJECTED, the order "
        "ASSIGNED, a job created (the answer). Of concurrent accepts exactly one wins."
    ),
)
@idempotent(idem_q)
async def accept_offer(request: web.Request) -> web.Response:
    principal = authenticated(request)
    order_id, offer_id = path_uuid(request), path_uuid(request, "offer_id")
    try:
        async with request.app[DB].transaction() as conn:
            order = await orders_q.assign_order(conn, id=order_id, customer_id=principal.user_id)
            if order is None:
                job = None
            else:
                offer = await q.accept_offer(conn, id=offer_id, order_id=order_id)
                if offer is None:
                    raise _Refused
                await q.reject_pending_offers(conn, order_id=order_id)
                job_id = await jobs_q.create_job(
                    conn, order_id=order_id, offer_id=offer_id,
                    customer_id=order.customer_id, provider_id=offer.provider_id,
                )  # fmt: skip
                assert job_id is not None  # INSERT ... RETURNING always returns the row
                job = await jobs_q.get_job(conn, id=job_id)
                facts.OFFERS_ACCEPTED.count(SERVICE)
    except _Refused:
        await refuse_offer_move(request, order_id, offer_id, owner=True)
    if job is None:
        await refuse_owner_move(request, order_id)
    return data(job)
