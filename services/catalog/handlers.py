"""The catalog API (docs/api.md, "catalog") on the generated repository: the four
resources of the taxonomy (services/catalog/crud.py) and the provider links."""

from __future__ import annotations

import uuid

import asyncpg
from aiohttp import web

from lib.auth.principal import Role
from lib.errors import Conflict, Forbidden, NotFound
from lib.http.access import SELF
from lib.http.conditional import TAG, TablesStamp
from lib.http.cursor import list_page
from lib.http.guards import authenticated, path_uuid
from lib.http.jsonio import json_response
from lib.http.keys import DB
from lib.http.openapi import operation
from services.catalog import schemas as s
from services.catalog.crud import Resource, add_routes
from services.catalog.db import models, table_versions
from services.catalog.db import services as sq
from services.catalog.db import taxonomy as tq

routes = web.RouteTableDef()

CATEGORY_TYPES = Resource(
    path="/v1/category-types",
    noun="category type",
    plural="category types",
    table="category_types",
    row=models.CategoryType,
    create_body=s.CategoryTypeCreate,
    update_body=s.CategoryTypeUpdate,
    list_query=s.CategoryTypeListQuery,
    lister=tq.list_category_types,
    sorting=tq.LIST_CATEGORY_TYPES_SORTING,
    count=tq.count_category_types,
    get=tq.get_category_type,
    create=tq.create_category_type,
    update=tq.update_category_type,
    archive=tq.archive_category_type,
    restore=tq.restore_category_type,
    referenced_by="its categories",
)
CATEGORIES = Resource(
    path="/v1/categories",
    noun="category",
    plural="categories",
    table="categories",
    row=models.Category,
    create_body=s.CategoryCreate,
    update_body=s.CategoryUpdate,
    list_query=s.CategoryListQuery,
    lister=tq.list_categories,
    sorting=tq.LIST_CATEGORIES_SORTING,
    count=tq.count_categories,
    get=tq.get_category,
    create=tq.create_category,
    update=tq.update_category,
    archive=tq.archive_category,
    restore=tq.restore_category,
    parent_field="type_id",
    parent_noun="category type",
    referenced_by="its subcategories",
)
SUBCATEGORIES = Resource(
    path="/v1/subcategories",
    noun="subcategory",
    plural="subcategories",
    table="subcategories",
    row=models.Subcategory,
    create_body=s.SubcategoryCreate,
    update_body=s.SubcategoryUpdate,
    list_query=s.SubcategoryListQuery,
    lister=tq.list_subcategories,
    sorting=tq.LIST_SUBCATEGORIES_SORTING,
    count=tq.count_subcategories,
    get=tq.get_subcategory,
    create=tq.create_subcategory,
    update=tq.update_subcategory,
    archive=tq.archive_subcategory,
    restore=tq.restore_subcategory,
    parent_field="category_id",
    parent_noun="category",
    referenced_by="its services",
)
SERVICES = Resource(
    path="/v1/services",
    noun="service",
    plural="services",
    table="services",
    row=models.Service,
    create_body=s.ServiceCreate,
    update_body=s.ServiceUpdate,
    list_query=s.ServiceListQuery,
    lister=sq.list_services,
    sorting=sq.LIST_SERVICES_SORTING,
    count=sq.count_services,
    get=sq.get_service,
    create=sq.create_service,
    update=sq.update_service,
    archive=sq.archive_service,
    restore=sq.restore_service,
    parent_field="subcategory_id",
    parent_noun="subcategory",
    referenced_by="the orders and provider links naming it",
)
for resource in (CATEGORY_TYPES, CATEGORIES, SUBCATEGORIES, SERVICES):
    add_routes(routes, resource)

# --- which provider offers which service ----------------------------------------------

LINK_TAGS = ["providers"]


def provider_of_link(request: web.Request) -> uuid.UUID:
    """The provider `{id|me}` names, when the caller may change its links: that provider
    (token `sub` == id) or an ADMIN; else 403. The operation let only a PROVIDER or an
    ADMIN in (`roles`, `owner`)."""
    principal = authenticated(request)
    me = request.match_info["id"] == "me"
    provider_id = principal.user_id if me else path_uuid(request)
    if principal.role is not Role.ADMIN and principal.user_id != provider_id:
        raise Forbidden("only that provider or an ADMIN may change its services")
    return provider_id


@routes.put("/v1/providers/{id}/services/{service_id}")
@operation(
    "Offer a service",
    tags=LINK_TAGS,
    status=204,
    roles=("PROVIDER", "ADMIN"),
    owner=SELF,
    me=True,
    any_owner=("ADMIN",),
    errors=(400, 403, 404, 409),
    description="`{id}` may be `me`. That provider or an ADMIN; idempotent. An archived "
    "service is a 409 (ADR 0058).",
)
async def offer_service(request: web.Request) -> web.Response:
    provider_id = provider_of_link(request)
    service_id = path_uuid(request, "service_id")
    try:
        async with request.app[DB].acquire() as conn:
            if await sq.offer_service(conn, provider_id=provider_id, service_id=service_id) == 0:
                service = await sq.get_service(conn, id=service_id)
                if service is not None and service.archived_at is not None:
                    raise Conflict(f"the service {service_id} is archived")
    except asyncpg.ForeignKeyViolationError:
        raise NotFound(f"no such service: {service_id}") from None
    return web.Response(status=204)


@routes.delete("/v1/providers/{id}/services/{service_id}")
@operation(
    "Withdraw a service",
    tags=LINK_TAGS,
    status=204,
    roles=("PROVIDER", "ADMIN"),
    owner=SELF,
    me=True,
    any_owner=("ADMIN",),
    errors=(400, 403, 404),
    description="`{id}` may be `me`. That provider or an ADMIN; idempotent (404 only for "
    "an unknown service).",
)
async def withdraw_service(request: web.Request) -> web.Response:
    provider_id = provider_of_link(request)
    service_id = path_uuid(request, "service_id")
    async with request.app[DB].acquire() as conn:
        removed = await sq.withdraw_service(conn, provider_id=provider_id, service_id=service_id)
        if removed == 0 and await sq.get_service(conn, id=service_id) is None:
            raise NotFound(f"no such service: {service_id}")
    return web.Response(status=204)


# the provider-service lists read provider_services and services (ADR 0019, 0038)
links_tag = TablesStamp(table_versions.tables_version, "provider_services", "services")


@routes.get("/v1/providers/{id}/services")
@operation(
    "List the services of a provider",
    tags=LINK_TAGS,
    response=models.Service,
    paged=True,
    cursor_paged=True,
    query=s.OfferedListQuery,
    errors=(400,),
    description="A provider unknown to the catalog offers nothing: an empty list. Its "
    "archived services are listed too, with their `archived_at` (ADR 0058). "
    "meta.next_cursor: `?cursor=` continues after this page (meta then has no `total` or "
    "`page`); null on the last page.",
    conditional=links_tag,
)
async def list_services_of_provider(request: web.Request) -> web.Response:
    provider_id = path_uuid(request)
    lp = list_page(request, sq.LIST_SERVICES_OF_PROVIDER_SORTING, s.OfferedListQuery)
    async with request.app[DB].acquire() as conn:
        tag = request.get(TAG) or await links_tag(request, conn)  # before the data
        count = sq.count_services_of_provider
        total = None if lp.after else await count(conn, provider_id=provider_id) or 0
        rows = await sq.list_services_of_provider(
            conn, orderby=lp.orderby, sort=lp.sort, after=lp.after, row_limit=lp.limit,
            row_offset=lp.offset, provider_id=provider_id,
        )  # fmt: skip
    return json_response({"data": rows, "meta": lp.meta(rows, total)}, headers={"ETag": tag})


@routes.get("/v1/services/{id}/providers")
@operation(
    "List the providers of a service",
    tags=LINK_TAGS,
    response=models.ProviderService,
    paged=True,
    query=s.ProviderListQuery,
    errors=(400, 404),
    conditional=links_tag,
)
async def list_providers_of_service(request: web.Request) -> web.Response:
    service_id = path_uuid(request)
    lp = list_page(request, sq.LIST_PROVIDERS_OF_SERVICE_SORTING, s.ProviderListQuery)
    async with request.app[DB].acquire() as conn:
        tag = request.get(TAG) or await links_tag(request, conn)  # before the data
        if await sq.get_service(conn, id=service_id) is None:
            raise NotFound("no such service")
        total = await sq.count_providers_of_service(conn, service_id=service_id) or 0
        rows = await sq.list_providers_of_service(
            conn, orderby=lp.orderby, sort=lp.sort, after=lp.after, row_limit=lp.limit,
            row_offset=lp.offset, service_id=service_id,
        )  # fmt: skip
    return json_response({"data": rows, "meta": lp.meta(rows, total)}, headers={"ETag": tag})
