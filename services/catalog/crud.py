"""The six routes every catalog resource has (public list and get; ADMIN create, PATCH,
DELETE and restore with If-Match), written once and described per resource by `Resource`.

The constraints decide: a name taken within the parent is a UNIQUE violation (409), an
unknown parent a FOREIGN KEY violation on write (404 naming it). DELETE archives (ADR 0058):
the row stays, its children and references keep working, the lists hide it but for an
ADMIN's `state`; a write naming an archived parent writes nothing (409 naming it). Each
write is one statement: a refused one leaves nothing behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import asyncpg
from aiohttp import web
from pydantic import BaseModel

from lib.db.runtime import Sorting
from lib.errors import Conflict, FieldError, NotFound
from lib.http.audit import before
from lib.http.body import parse_body
from lib.http.conditional import TAG, TablesStamp
from lib.http.cursor import ListPage, list_page
from lib.http.etag import etag, if_match_version, stale
from lib.http.guards import path_uuid
from lib.http.jsonio import data, json_response
from lib.http.keys import DB
from lib.http.listing import ARCHIVED, ListQuery
from lib.http.openapi import operation
from lib.http.patch import patch_args
from services.catalog.db import table_versions
from services.catalog.schemas import READ_ONLY

Query = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Resource:
    path: str  # "/v1/categories"
    noun: str  # "category"
    plural: str  # "categories"
    table: str  # "categories": its version stamp tags the lists (ADR 0019)
    row: type  # the generated row class
    create_body: type[BaseModel]
    update_body: type[BaseModel]
    list_query: type[ListQuery]
    lister: Query  # the generated sorted list (fixup: sort)
    sorting: Sorting[Any, Any]  # its keys; keyset ones answer `?cursor=`
    count: Query
    get: Query
    create: Query
    update: Query
    archive: Query
    restore: Query
    parent_field: str | None = None  # "type_id": the create body's field and list filter
    parent_noun: str = ""  # "category type"
    referenced_by: str = ""  # "its categories": what keeps working when it is archived


async def read_page(res: Resource, conn: Any, lp: ListPage[Any, Any, Any]) -> Any:
    """(rows, meta) of a list; the count grows with the table, so a cursor page has none."""
    filters = {res.parent_field: getattr(lp.query, res.parent_field)} if res.parent_field else {}
    filters["archived"] = ARCHIVED[lp.query.state]
    total = None if lp.after else await res.count(conn, **filters) or 0
    rows = await res.lister(
        conn, orderby=lp.orderby, sort=lp.sort, after=lp.after, row_limit=lp.limit,
        row_offset=lp.offset, **filters,
    )  # fmt: skip
    return rows, lp.meta(rows, total)


def add_routes(routes: web.RouteTableDef, res: Resource) -> None:
    tags = [res.plural]
    item = f"{res.path}/{{id}}"

    def one(row: Any, status: int = 200) -> web.Response:
        headers = {"ETag": etag(row.version)}
        if status == 201:
            headers["Location"] = f"{res.path}/{row.id}"
        return data(row, status=status, headers=headers)

    def refused(exc: asyncpg.IntegrityConstraintViolationError, body: BaseModel) -> Exception:
        """The violation of a write, as the API names it."""
        if isinstance(exc, asyncpg.UniqueViolationError):
            name = getattr(body, "name", None)
            where = f" in this {res.parent_noun}" if res.parent_field else ""
            return Conflict(f"a {res.noun} named {name!r} exists{where}")
        if isinstance(exc, asyncpg.ForeignKeyViolationError) and res.parent_field:
            parent = getattr(body, res.parent_field)
            return NotFound(f"no such {res.parent_noun}: {res.parent_field} {parent}")
        raise exc

    def archived_parent(body: BaseModel) -> Exception:
        """A create or move under an archived parent wrote nothing: 409 naming it."""
        assert res.parent_field is not None  # only a resource with a parent names one
        parent = getattr(body, res.parent_field)
        return Conflict(
            f"the {res.parent_noun} {parent} is archived",
            errors=[FieldError(res.parent_field, f"archived {res.parent_noun} {parent}")],
        )

    async def current(conn: Any, row_id: uuid.UUID) -> Any:
        row = await res.get(conn, id=row_id)
        if row is None:
            raise NotFound(f"no such {res.noun}")
        return row

    async def missing_or_stale(conn: Any, row_id: uuid.UUID, version: int, body: Any) -> NoReturn:
        """Nothing matched id + version: 404 when the id is unknown, 412 when the version is
        not the current one, else the parent the body names is archived (409)."""
        row = await current(conn, row_id)
        if row.version != version:
            raise stale(row.version)
        raise archived_parent(body)

    rows_tag = TablesStamp(table_versions.tables_version, res.table)

    async def row_tag(request: web.Request, conn: Any) -> str | None:
        row = await res.get(conn, id=path_uuid(request))
        return None if row is None else etag(row.version)

    @operation(
        f"List {res.plural}",
        tags=tags,
        response=res.row,
        paged=True,
        cursor_paged=res.sorting.keyset,
        query=res.list_query,
        description=(
            "meta.next_cursor: `?cursor=` continues after this page at the cost of the first "
            "(meta then has no `total` or `page`); null on the last page."
            if res.sorting.keyset
            else ""
        ),
        conditional=rows_tag,
    )
    async def list_rows(request: web.Request) -> web.Response:
        lp = list_page(request, res.sorting, res.list_query)
        async with request.app[DB].acquire() as conn:
            tag = request.get(TAG) or await rows_tag(request, conn)  # before the data
            rows, meta = await read_page(res, conn, lp)
        headers = None if tag is None else {"ETag": tag}
        return json_response({"data": rows, "meta": meta}, headers=headers)

    @operation(
        f"Get a {res.noun}",
        tags=tags,
        response=res.row,
        etag=True,
        errors=(400, 404),
        conditional=row_tag,
    )
    async def get_row(request: web.Request) -> web.Response:
        row_id = path_uuid(request)
        async with request.app[DB].acquire() as conn:
            row = await res.get(conn, id=row_id)
        if row is None:
            raise NotFound(f"no such {res.noun}")
        return one(row)

    @operation(
        f"Create a {res.noun}",
        tags=tags,
        response=res.row,
        status=201,
        etag=True,
        body=res.create_body,
        roles=("ADMIN",),
        errors=(403, 404, 409) if res.parent_field else (403, 409),
        description=(
            f"An unknown {res.parent_noun} is a 404; an archived one or a name taken in it a 409."
            if res.parent_field
            else "A name taken is a 409."
        ),
    )
    async def create_row(request: web.Request) -> web.Response:
        body = await parse_body(request, res.create_body, forbidden=READ_ONLY)
        try:
            async with request.app[DB].acquire() as conn:
                row = await res.create(conn, **body.model_dump())
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise refused(exc, body) from None
        if row is None:  # INSERT ... SELECT wrote nothing: the parent is archived
            raise archived_parent(body)
        return one(row, status=201)

    @operation(
        f"Update a {res.noun}",
        tags=tags,
        response=res.row,
        etag=True,
        body=res.update_body,
        roles=("ADMIN",),
        if_match=True,
        errors=(403, 404, 409),
        description="Only the fields given change."
        + (f" Moving into an archived {res.parent_noun} is a 409." if res.parent_field else ""),
    )
    async def update_row(request: web.Request) -> web.Response:
        row_id = path_uuid(request)
        version = if_match_version(request)
        body = await parse_body(request, res.update_body, forbidden=READ_ONLY)
        try:
            async with request.app[DB].acquire() as conn:
                before(request, await res.get(conn, id=row_id))  # its event's
                row = await res.update(conn, id=row_id, version=version, **patch_args(body))
                if row is None:
                    await missing_or_stale(conn, row_id, version, body)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise refused(exc, body) from None
        return one(row)

    @operation(
        f"Archive a {res.noun}",
        tags=tags,
        status=204,
        roles=("ADMIN",),
        if_match=True,
        errors=(403, 404),
        description=(
            f"Archived, not deleted (ADR 0058): hidden from the list, still read by id with "
            f"its `archived_at`; {res.referenced_by} keep working, nothing new may refer to "
            f"it. Again on an archived {res.noun}: 204, nothing changes. "
            f"`POST {item}/restore` undoes it."
        ),
    )
    async def archive_row(request: web.Request) -> web.Response:
        row_id = path_uuid(request)
        version = if_match_version(request)
        async with request.app[DB].acquire() as conn:
            before(request, await res.get(conn, id=row_id))  # its event's
            if await res.archive(conn, id=row_id, version=version) is None:
                row = await current(conn, row_id)
                if row.archived_at is None:
                    raise stale(row.version)
        return web.Response(status=204)

    @operation(
        f"Restore a {res.noun}",
        tags=tags,
        response=res.row,
        etag=True,
        roles=("ADMIN",),
        if_match=True,
        errors=(403, 404),
        description=f"An archived {res.noun} live again (ADR 0058). Again on a live one: "
        "200, nothing changes.",
    )
    async def restore_row(request: web.Request) -> web.Response:
        row_id = path_uuid(request)
        version = if_match_version(request)
        async with request.app[DB].acquire() as conn:
            before(request, await res.get(conn, id=row_id))  # its event's
            row = await res.restore(conn, id=row_id, version=version)
            if row is None:
                row = await current(conn, row_id)
                if row.archived_at is not None:
                    raise stale(row.version)
        return one(row)

    routes.get(res.path)(list_rows)
    routes.post(res.path)(create_row)
    routes.get(item)(get_row)
    routes.patch(item)(update_row)
    routes.delete(item)(archive_row)
    routes.post(f"{item}/restore")(restore_row)
