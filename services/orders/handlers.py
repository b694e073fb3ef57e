"""Orders (docs/api.md, "orders"): create, list, read, PATCH and cancel, and the currencies.

Every move is one conditional UPDATE (`WHERE status = 'OPEN' ...`): of two racing requests
only one can match. When nothing matched, the order is read again to say why: 404 for a
caller who cannot see it, 403 for one who may see but not act, 412 for a stale If-Match,
409 for a move its state does not allow. ADR 0005: catalog and users are called before
any connection is taken.
"""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

import asyncpg
from aiohttp import web

from lib.auth.principal import Role
from lib.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from lib.http.audit import before
from lib.http.body import parse_body
from lib.http.conditional import TAG, TablesStamp
from lib.http.cursor import list_page
from lib.http.etag import etag, if_match_version, stale
from lib.http.guards import authenticated, path_uuid
from lib.http.idempotency import idempotent
from lib.http.jsonio import data, json_response
from lib.http.keys import DB
from lib.http.listing import like_pattern, parse_list
from lib.http.openapi import operation
from lib.http.patch import patch_args
from services.orders import facts
from services.orders import schemas as s
from services.orders.access import offered_services, visible_order
from services.orders.db import idempotency as idem_q
from services.orders.db import models, table_versions
from services.orders.db import offers as offers_q
from services.orders.db import orders as q
from services.orders.deps import CATALOG, customer_name
from services.orders.settings import SERVICE

routes = web.RouteTableDef()
TAGS = ["orders"]
# owners (services/orders/access.py and the SQL check them against the row)
SEES_ORDER = (
    "its customer; a provider offering its service (while OPEN) or with an offer or job on it"
)
ORDER_CUSTOMER = "the order's customer"


def one(order: models.Order, status: int = 200) -> web.Response:
    headers = {"ETag": etag(order.version)}
    if status == 201:
        headers["Location"] = f"/v1/orders/{order.id}"
    return data(order, status=status, headers=headers)


async def refuse_owner_move(
    request: web.Request, order_id: uuid.UUID, *, version: int | None = None
) -> NoReturn:
    """A move of the owner matched no row: say why."""
    principal = authenticated(request)
    order = await visible_order(request, order_id)
    if order.customer_id != principal.user_id:
        raise Forbidden("only the order's customer may do this")
    if order.status is not models.OrderStatus.OPEN:
        raise Conflict(f"the order is {order.status}, not OPEN")
    if version is not None and order.version != version:
        raise stale(order.version)
    raise Conflict("the order changed meanwhile; fetch it and retry")


@routes.post("/v1/orders")
@operation(
    "Create an order",
    tags=TAGS,
    response=models.Order,
    status=201,
    etag=True,
    body=s.OrderCreate,
    roles=("CUSTOMER",),
    verified=True,
    idempotent=True,
    errors=(400, 403, 404, 409, 502, 503),
    description=(
        "A verified CUSTOMER. The service is checked with catalog (unknown: 404; archived: "
        "409; catalog down: 503 CIRCUIT_OPEN). `customer_name` is read from users; users down: the "
        "order is created with `customer_name: null`. Idempotency-Key: the same key and "
        "body within 24 h answer the first response again, without asking catalog or users."
    ),
)
@idempotent(idem_q)
async def create_order(request: web.Request) -> web.Response:
    principal = authenticated(request)
    body = await parse_body(request, s.OrderCreate, forbidden=s.READ_ONLY)
    archived = await request.app[CATALOG].service_archived(body.service_id, caller=request)
    if archived is None:
        raise NotFound(f"no such service: service_id {body.service_id}")
    if archived:
        raise Conflict(
            f"the service {body.service_id} is archived",
            errors=[FieldError("service_id", f"archived service {body.service_id}")],
        )
    name = await customer_name(request, principal.user_id)
    async with request.app[DB].acquire() as conn:
        row = await q.create_order(
            conn, customer_id=principal.user_id, customer_name=name, **body.model_dump()
        )
    assert row is not None  # INSERT ... RETURNING always returns the row
    facts.ORDERS.count(SERVICE)  # once the Idempotency-Key's transaction commits
    return one(row, status=201)


@routes.get("/v1/orders")
@operation(
    "List orders",
    tags=TAGS,
    response=models.Order,
    paged=True,
    cursor_paged=True,
    query=s.OrderListQuery,
    roles=("CUSTOMER", "PROVIDER", "ADMIN"),
    errors=(400, 502, 503),
    description=(
        "The orders the caller may see: a customer's own; for a provider the OPEN orders "
        "of the services they offer plus those where they have an offer or a job; all for "
        "an ADMIN. Default order: created_at desc. meta.next_cursor: `?cursor=` continues "
        "after this page at the cost of the first (meta then has no `total` or `page`)."
    ),
)
async def list_orders(request: web.Request) -> web.Response:
    principal = authenticated(request)
    lp = list_page(request, q.LIST_ORDERS_SORTING, s.OrderListQuery)
    offered = sorted(await offered_services(request, principal))
    query = lp.query
    filters: dict[str, Any] = {
        "see_all": principal.role is Role.ADMIN,
        "viewer_id": principal.user_id,
        "offered": offered,
        "status": query.status,
        "service_id": query.service_id,
        "search": like_pattern(query.search),
    }
    async with request.app[DB].acquire() as conn:
        # the count grows with the table: at `page` only, never after a cursor
        total = None if lp.after else await q.count_orders(conn, **filters) or 0
        rows = await q.list_orders(
            conn, **filters, orderby=lp.orderby, sort=lp.sort, after=lp.after,
            row_limit=lp.limit, row_offset=lp.offset,
        )  # fmt: skip
    return json_response({"data": rows, "meta": lp.meta(rows, total)})


@routes.get("/v1/orders/{id}")
@operation(
    "Get an order",
    tags=TAGS,
    response=models.Order,
    etag=True,
    roles=("CUSTOMER", "PROVIDER", "ADMIN"),
    owner=SEES_ORDER,
    any_owner=("ADMIN",),
    errors=(400, 404, 502, 503),
    description="404 for a caller who may not see it.",
)
async def get_order(request: web.Request) -> web.Response:
    return one(await visible_order(request, path_uuid(request)))


@routes.patch("/v1/orders/{id}")
@operation(
    "Update an order",
    tags=TAGS,
    response=models.Order,
    etag=True,
    body=s.OrderUpdate,
    roles=("CUSTOMER",),
    owner=ORDER_CUSTOMER,
    if_match=True,
    errors=(400, 403, 404, 409, 412, 428),
    description="The owner, while OPEN (else 409). Only the fields given change.",
)
async def update_order(request: web.Request) -> web.Response:
    principal = authenticated(request)
    order_id = path_uuid(request)
    version = if_match_version(request)
    body = await parse_body(request, s.OrderUpdate, forbidden=s.READ_ONLY)
    try:
        async with request.app[DB].acquire() as conn:
            before(request, await q.get_order(conn, id=order_id))  # its event's
            row = await q.update_order(
                conn, id=order_id, customer_id=principal.user_id, version=version,
                **patch_args(body),
            )  # fmt: skip
    except asyncpg.CheckViolationError:
        raise ValidationFailed(
            "time_end must be after time_start",
            errors=[FieldError("time_end", "must be after time_start")],
        ) from None
    if row is None:
        await refuse_owner_move(request, order_id, version=version)
    return one(row)


@routes.post("/v1/orders/{id}/cancel")
@operation(
    "Cancel an order",
    tags=TAGS,
    response=models.Order,
    roles=("CUSTOMER",),
    owner=ORDER_CUSTOMER,
    errors=(400, 403, 404, 409),
    description="The owner, while OPEN (else 409); its PENDING offers are REJECTED.",
)
async def cancel_order(request: web.Request) -> web.Response:
    principal = authenticated(request)
    order_id = path_uuid(request)
    async with request.app[DB].transaction() as conn:
        before(request, await q.get_order(conn, id=order_id))  # its event's
        row = await q.cancel_order(conn, id=order_id, customer_id=principal.user_id)
        if row is not None:
            await offers_q.reject_pending_offers(conn, order_id=order_id)
    if row is None:
        await refuse_owner_move(request, order_id)
    return one(row)


# the currency list: the currencies table's stamp (ADR 0019, 0038)
currencies_tag = TablesStamp(table_versions.tables_version, "currencies")


@routes.get("/v1/currencies")
@operation(
    "List currencies",
    tags=["currencies"],
    response=models.Currency,
    paged=True,
    query=s.CurrencyListQuery,
    errors=(400,),
    description="ISO 4217 codes an offer may use (reference data), by code.",
    conditional=currencies_tag,
)
async def list_currencies(request: web.Request) -> web.Response:
    page = parse_list(request, ("code",), s.CurrencyListQuery)
    async with request.app[DB].acquire() as conn:
        tag = request.get(TAG) or await currencies_tag(request, conn)  # before the data
        rows = await q.list_currencies(conn)  # a few dozen rows: paged here
    if page.sort == "desc":
        rows.reverse()
    chunk = rows[page.offset : page.offset + page.limit]
    return json_response({"data": chunk, "meta": page.meta(len(rows))}, headers={"ETag": tag})
