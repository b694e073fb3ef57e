"""Who sees a job, and why a move of a job or an offer matched no row: its UPDATE's
WHERE clause holds the state and the side; when it matches nothing, these read the row
and answer 404 (the caller cannot see it), 403 (the wrong side: a caller whose role
changed since, with a new token) or 409 (the wrong state)."""

from __future__ import annotations

import uuid
from typing import NoReturn

from aiohttp import web

from lib.auth.principal import Role
from lib.errors import Conflict, Forbidden, NotFound
from lib.http.guards import authenticated
from lib.http.keys import DB
from services.orders.access import visible_order
from services.orders.db import jobs as jobs_q
from services.orders.db import offers as offers_q

Job = jobs_q.GetJobRow


def no_such_job() -> NotFound:
    return NotFound("no such job")


async def visible_job(request: web.Request, job_id: uuid.UUID) -> Job:
    principal = authenticated(request)
    async with request.app[DB].acquire() as conn:
        job = await jobs_q.get_job(conn, id=job_id)
    if job is None:
        raise no_such_job()
    if principal.role is Role.ADMIN or principal.user_id in (job.customer_id, job.provider_id):
        return job
    raise no_such_job()


async def refuse_job_move(request: web.Request, job_id: uuid.UUID, *, by: str) -> NoReturn:
    """A move matched no row: 404 (cannot see), 403 (wrong side), else 409."""
    principal = authenticated(request)
    job = await visible_job(request, job_id)
    allowed = {
        "provider": (job.provider_id,),
        "customer": (job.customer_id,),
        "customer or provider": (job.customer_id, job.provider_id),
    }[by]
    if principal.user_id not in allowed:  # a caller whose role changed since (a new token)
        raise Forbidden(f"only the job's {by} may do this")
    raise Conflict(f"the job is {job.status}")


def no_such_offer() -> NotFound:
    return NotFound("no such offer")


async def refuse_offer_move(
    request: web.Request, order_id: uuid.UUID, offer_id: uuid.UUID, *, owner: bool
) -> NoReturn:
    """A move of an offer matched no row: say why (404 / 403 / 409)."""
    principal = authenticated(request)
    async with request.app[DB].acquire() as conn:
        offer = await offers_q.get_offer(conn, id=offer_id, order_id=order_id)
    if offer is None:
        await visible_order(request, order_id)  # 404 for an order the caller cannot see
        raise no_such_offer()
    if offer.provider_id != principal.user_id:
        order = await visible_order(request, order_id)
        if order.customer_id != principal.user_id and principal.role is not Role.ADMIN:
            raise no_such_offer()
        if not owner:
            raise Forbidden("only the offer's provider may withdraw it")
    raise Conflict(f"the offer is {offer.status}, not PENDING")
