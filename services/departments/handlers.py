"""The departments API (docs/api.md, "departments") on the generated repository."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from lib.errors import Conflict, NotFound
from lib.http.audit import before
from lib.http.body import parse_body
from lib.http.conditional import TAG, TablesStamp, list_tag
from lib.http.cursor import list_page
from lib.http.etag import etag, if_match_version, stale
from lib.http.guards import path_uuid
from lib.http.idempotency import idempotent
from lib.http.jsonio import data, json_response
from lib.http.keys import DB
from lib.http.listing import ARCHIVED
from lib.http.openapi import operation
from services.departments.db import departments as q
from services.departments.db import idempotency, table_versions
from services.departments.db.models import Department
from services.departments.schemas import (
    READ_ONLY,
    DepartmentCreate,
    DepartmentListQuery,
    DepartmentUpdate,
)

routes = web.RouteTableDef()
TAGS = ["departments"]


def _one(department: Department, status: int = 200) -> web.Response:
    headers = {"ETag": etag(department.version)}
    if status == 201:
        headers["Location"] = f"/v1/departments/{department.id}"
    return data(department, status=status, headers=headers)


# every list of departments: the departments table's version stamp (ADR 0019, 0038)
departments_tag = TablesStamp(table_versions.tables_version, "departments")


async def department_tag(request: web.Request, conn: Any) -> str | None:
    department = await q.get_department(conn, id=path_uuid(request))
    return None if department is None else etag(department.version)


@routes.get("/v1/departments")
@operation(
    "List departments",
    tags=TAGS,
    response=Department,
    paged=True,
    query=DepartmentListQuery,
    conditional=departments_tag,
)
async def list_departments(request: web.Request) -> web.Response:
    lp = list_page(request, q.PAGE_DEPARTMENTS_SORTING, DepartmentListQuery)
    archived = ARCHIVED[lp.query.state]
    async with request.app[DB].acquire() as conn:
        # page, total and stamp in one statement, so one snapshot: a tag names this data
        found = await q.page_departments(
            conn, orderby=lp.orderby, sort=lp.sort, after=lp.after, row_limit=lp.limit,
            row_offset=lp.offset, archived=archived,
        )  # fmt: skip
        # past the end (or no rows at all): no row carried the total and the stamp
        counted = found or await q.count_departments_stamped(conn, archived=archived)
    assert counted is not None  # two scalar subqueries: always one row
    tag = request.get(TAG) or list_tag(request, counted.version or 0)
    rows = found.rows if found else []
    return json_response(
        {"data": rows, "meta": lp.meta(rows, counted.total)}, headers={"ETag": tag}
    )


@routes.get("/v1/departments/{id}")
@operation(
    "Get a department",
    tags=TAGS,
    response=Department,
    etag=True,
    errors=(400, 404),
    conditional=department_tag,
)
async def get_department(request: web.Request) -> web.Response:
    department_id = path_uuid(request)
    async with request.app[DB].acquire() as conn:
        department = await q.get_department(conn, id=department_id)
    if department is None:
        raise NotFound("no such department")
    return _one(department)


@routes.post("/v1/departments")
@operation(
    "Create a department",
    tags=TAGS,
    response=Department,
    status=201,
    etag=True,
    body=DepartmentCreate,
    roles=("ADMIN",),
    errors=(403, 409),
    idempotent=True,
)
@idempotent(idempotency)
async def create_department(request: web.Request) -> web.Response:
    body = await parse_body(request, DepartmentCreate, forbidden=READ_ONLY)
    try:
        async with request.app[DB].acquire() as conn:
            department = await q.create_department(conn, name=body.name, address=body.address)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a department named {body.name!r} exists") from None
    assert department is not None  # INSERT ... RETURNING always returns the row
    return _one(department, status=201)


@routes.patch("/v1/departments/{id}")
@operation(
    "Update a department",
    tags=TAGS,
    response=Department,
    etag=True,
    body=DepartmentUpdate,
    roles=("ADMIN",),
    if_match=True,
    errors=(403, 404, 409),
)
async def update_department(request: web.Request) -> web.Response:
    department_id = path_uuid(request)
    version = if_match_version(request)
    body = await parse_body(request, DepartmentUpdate, forbidden=READ_ONLY)
    try:
        async with request.app[DB].acquire() as conn:
            before(request, await q.get_department(conn, id=department_id))  # its event's
            updated = await q.update_department(
                conn, id=department_id, version=version, name=body.name, address=body.address
            )
            if updated is None:  # 404 when the id is unknown, else 412
                raise stale((await _current(conn, department_id)).version)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a department named {body.name!r} exists") from None
    return _one(updated)


@routes.delete("/v1/departments/{id}")
@operation(
    "Archive a department",
    tags=TAGS,
    status=204,
    roles=("ADMIN",),
    if_match=True,
    errors=(403, 404),
    description=(
        "Archived, not deleted (ADR 0058): hidden from the list, still read by id with its "
        "`archived_at`; users keep its id, none may be moved into it. Again on an archived "
        "department: 204, nothing changes. `POST /v1/departments/{id}/restore` undoes it."
    ),
)
async def delete_department(request: web.Request) -> web.Response:
    department_id = path_uuid(request)
    version = if_match_version(request)
    async with request.app[DB].acquire() as conn:
        before(request, await q.get_department(conn, id=department_id))  # its event's
        if await q.archive_department(conn, id=department_id, version=version) is None:
            current = await _current(conn, department_id)
            if current.archived_at is None:
                raise stale(current.version)
    return web.Response(status=204)


@routes.post("/v1/departments/{id}/restore")
@operation(
    "Restore a department",
    tags=TAGS,
    response=Department,
    etag=True,
    roles=("ADMIN",),
    if_match=True,
    errors=(403, 404),
    description="An archived department live again (ADR 0058). Again on a live one: 200, "
    "nothing changes.",
)
async def restore_department(request: web.Request) -> web.Response:
    department_id = path_uuid(request)
    version = if_match_version(request)
    async with request.app[DB].acquire() as conn:
        before(request, await q.get_department(conn, id=department_id))  # its event's
        restored = await q.restore_department(conn, id=department_id, version=version)
        if restored is None:
            restored = await _current(conn, department_id)
            if restored.archived_at is not None:
                raise stale(restored.version)
    return _one(restored)


async def _current(conn: Any, department_id: Any) -> Department:
    current = await q.get_department(conn, id=department_id)
    if current is None:
        raise NotFound("no such department")
    return current
