"""Jobs (their customer, their provider, ADMIN): list, read, start (provider), complete
(provider; the order COMPLETED and the points award written to the outbox in the same
transaction), cancel (either side; the order OPEN again); reviews of completed jobs."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from aiohttp import web

from lib import tracing
from lib.auth.principal import Role
from lib.db.committed import after_commit
from lib.errors import Conflict
from lib.http.audit import before
from lib.http.body import parse_body
from lib.http.conditional import TAG, TablesStamp
from lib.http.cursor import list_page
from lib.http.guards import authenticated, path_uuid
from lib.http.idempotency import idempotent
from lib.http.jsonio import data, json_response
from lib.http.keys import DB, SETTINGS
from lib.http.openapi import operation
from services.orders import facts
from services.orders import schemas as s
from services.orders.db import idempotency as idem_q
from services.orders.db import jobs as q
from services.orders.db import models, table_versions
from services.orders.db import orders as orders_q
from services.orders.db import outbox as outbox_q
from services.orders.db import reviews as reviews_q
from services.orders.refusals import refuse_job_move, visible_job
from services.orders.relay import POINTS_TOPIC, RELAY, award_key
from services.orders.settings import SERVICE

routes = web.RouteTableDef()
TAGS = ["jobs"]
Job = q.GetJobRow
PARTIES = "the job's customer or provider"  # owners: the SQL checks them against the row
PROVIDER = "the job's provider"


async def reread(request: web.Request, job_id: uuid.UUID) -> web.Response:
    async with request.app[DB].acquire() as conn:
        job = await q.get_job(conn, id=job_id)
    return data(job)


@routes.get("/v1/jobs")
@operation(
    "List jobs",
    tags=TAGS,
    response=Job,
    paged=True,
    cursor_paged=True,
    query=s.JobListQuery,
    roles=("CUSTOMER", "PROVIDER", "ADMIN"),
    errors=(400,),
    description="The caller's jobs (as customer or provider); all for an ADMIN. Default "
    "order: created_at desc. meta.next_cursor: `?cursor=` continues after this page at the "
    "cost of the first (meta then has no `total` or `page`).",
)
async def list_jobs(request: web.Request) -> web.Response:
    principal = authenticated(request)
    lp = list_page(request, q.LIST_JOBS_SORTING, s.JobListQuery)
    filters: dict[str, Any] = {
        "see_all": principal.role is Role.ADMIN,
        "viewer_id": principal.user_id,
        "status": lp.query.status,
    }
    async with request.app[DB].acquire() as conn:
        total = None if lp.after else await q.count_jobs(conn, **filters) or 0
        rows = await q.list_jobs(
            conn, **filters, orderby=lp.orderby, sort=lp.sort, after=lp.after,
            row_limit=lp.limit, row_offset=lp.offset,
        )  # fmt: skip
    return json_response({"data": rows, "meta": lp.meta(rows, total)})


@routes.get("/v1/jobs/{id}")
@operation(
    "Get a job",
    tags=TAGS,
    response=Job,
    roles=("CUSTOMER", "PROVIDER", "ADMIN"),
    owner=PARTIES,
    any_owner=("ADMIN",),
    errors=(400, 404),
)
async def get_job(request: web.Request) -> web.Response:
    return data(await visible_job(request, path_uuid(request)))


@routes.post("/v1/jobs/{id}/start")
@operation(
    "Start a job",
    tags=TAGS,
    response=Job,
    roles=("PROVIDER",),
    owner=PROVIDER,
    idempotent=True,
    errors=(400, 403, 404, 409),
    description="Its provider, while PENDING (else 409).",
)
@idempotent(idem_q)
async def start_job(request: web.Request) -> web.Response:
    principal = authenticated(request)
    job_id = path_uuid(request)
    async with request.app[DB].acquire() as conn:
        before(request, await q.get_job(conn, id=job_id))  # its event's
        moved = await q.start_job(conn, id=job_id, provider_id=principal.user_id)
    if moved is None:
        await refuse_job_move(request, job_id, by="provider")
    return await reread(request, job_id)


@routes.post("/v1/jobs/{id}/complete")
@operation(
    "Complete a job",
    tags=TAGS,
    response=Job,
    roles=("PROVIDER",),
    owner=PROVIDER,
    idempotent=True,
    errors=(400, 403, 404, 409),
    description=(
        "Its provider, while IN_PROGRESS (else 409). The order becomes COMPLETED and the "
        "provider earns POINTS_PER_JOB through the transactional outbox (exactly once)."
    ),
)
@idempotent(idem_q)
async def complete_job(request: web.Request) -> web.Response:
    principal = authenticated(request)
    job_id = path_uuid(request)
    points = request.app[SETTINGS].points_per_job  # type: ignore[attr-defined]
    async with request.app[DB].transaction() as conn:
        before(request, await q.get_job(conn, id=job_id))  # its event's
        order_id = await q.complete_job(conn, id=job_id, provider_id=principal.user_id)
        if order_id is not None:
            await orders_q.complete_order(conn, id=order_id)
            await outbox_q.enqueue_outbox(
                conn,
                topic=POINTS_TOPIC,
                aggregate_id=job_id,
                payload={
                    "user_id": str(principal.user_id),
                    "delta": points,
                    "reason": f"job {job_id} completed",
                },
                idempotency_key=award_key(job_id),
                traceparent=tracing.current_traceparent(),  # the relay's span links to it
            )
            facts.JOBS_COMPLETED.count(SERVICE)
    if order_id is None:
        await refuse_job_move(request, job_id, by="provider")
    relay = request.app.get(RELAY)
    if relay is not None:
        after_commit(relay.wake)  # the write's transaction commits after the handler
    return await reread(request, job_id)


@routes.post("/v1/jobs/{id}/cancel")
@operation(
    "Cancel a job",
    tags=TAGS,
    response=Job,
    roles=("CUSTOMER", "PROVIDER"),
    owner=PARTIES,
    idempotent=True,
    errors=(400, 403, 404, 409),
    description="Its customer or provider, while PENDING or IN_PROGRESS (else 409); the "
    "order is OPEN again and takes new offers.",
)
@idempotent(idem_q)
async def cancel_job(request: web.Request) -> web.Response:
    principal = authenticated(request)
    job_id = path_uuid(request)
    async with request.app[DB].transaction() as conn:
        before(request, await q.get_job(conn, id=job_id))  # its event's
        order_id = await q.cancel_job(conn, id=job_id, user_id=principal.user_id)
        if order_id is not None:
            await orders_q.reopen_order(conn, id=order_id)
            facts.JOBS_CANCELLED.count(SERVICE, role=principal.role.value.lower())
    if order_id is None:
        await refuse_job_move(request, job_id, by="customer or provider")
    return await reread(request, job_id)


@routes.post("/v1/jobs/{id}/review")
@operation(
    "Review a job",
    tags=["reviews"],
    response=models.Review,
    status=201,
    body=s.ReviewCreate,
    roles=("CUSTOMER",),
    owner="the job's customer",
    idempotent=True,
    errors=(400, 403, 404, 409),
    description="The job's customer, once (409 after), when the job is COMPLETED (else 409).",
)
@idempotent(idem_q)
async def review_job(request: web.Request) -> web.Response:
    principal = authenticated(request)
    job_id = path_uuid(request)
    body = await parse_body(request, s.ReviewCreate, forbidden=frozenset({"id", "job_id"}))
    try:
        async with request.app[DB].acquire() as conn:
            row = await reviews_q.create_review(
                conn, job_id=job_id, customer_id=principal.user_id, **body.model_dump()
            )
    except asyncpg.UniqueViolationError:
        raise Conflict("this job is already reviewed") from None
    if row is None:
        await refuse_job_move(request, job_id, by="customer")
    facts.REVIEWS.count(SERVICE, rating=f"{body.rating:.1f}")  # after the key's commit
    return data(row, status=201)


# every provider's review list: the reviews table's stamp (ADR 0019, 0038)
reviews_tag = TablesStamp(table_versions.tables_version, "reviews")


@routes.get("/v1/providers/{id}/reviews")
@operation(
    "List the reviews of a provider",
    tags=["reviews"],
    response=models.Review,
    paged=True,
    cursor_paged=True,
    meta=s.ReviewListMeta,
    query=s.ReviewListQuery,
    errors=(400,),
    description="Public. `meta.avg_rating`: the average over all of them (decimal string, "
    "rounded half-up to 2 places; null without reviews). Default order: created_at desc. "
    "meta.next_cursor: `?cursor=` continues after this page (meta then has no `page`).",
    conditional=reviews_tag,
)
async def list_reviews(request: web.Request) -> web.Response:
    provider_id = path_uuid(request)
    lp = list_page(request, reviews_q.LIST_PROVIDER_REVIEWS_SORTING, s.ReviewListQuery)
    async with request.app[DB].acquire() as conn:
        tag = request.get(TAG) or await reviews_tag(request, conn)  # before the data
        rating = await reviews_q.provider_rating(conn, provider_id=provider_id)
        rows = await reviews_q.list_provider_reviews(
            conn, provider_id=provider_id, orderby=lp.orderby, sort=lp.sort, after=lp.after,
            row_limit=lp.limit, row_offset=lp.offset,
        )  # fmt: skip
    assert rating is not None  # an aggregate without GROUP BY: always one row
    meta = {**lp.meta(rows, rating.total), "avg_rating": rating.avg_rating}
    return json_response({"data": rows, "meta": meta}, headers={"ETag": tag})
