"""The catalog API's input models (output is the generated row of each table)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from lib.http.cursor import KeysetListQuery
from lib.http.fields import single_line
from lib.http.listing import ListQuery, State, state_field
from lib.http.patch import Keep, PatchModel
from services.catalog.db import services as sq
from services.catalog.db import taxonomy as tq

TaxonName = Annotated[str, single_line(100)]
ServiceName = Annotated[str, single_line(200)]
# Several lines allowed: no control characters but tab, LF and CR (text cannot hold NUL).
Description = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=2000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
    ),
]
# Money is a decimal string (numeric(12,2)); a JSON number is accepted too.
Price = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=2),
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$"}),
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")]

READ_ONLY = frozenset({"id", "version", "created_at", "updated_at", "archived_at"})

# The sort keys are the generated lists' own (fixup: sort in sql/catalog/queries)
TaxonOrderBy = tq.ListCategoryTypesKey
ServiceOrderBy = sq.ListServicesKey
SERVICE_KEYS = tuple(sq.LIST_SERVICES_SORTING.keys)  # GET /v1/services
OFFERED_KEYS = tuple(sq.LIST_SERVICES_OF_PROVIDER_SORTING.keys)  # GET /v1/providers/{id}/services


class _Create(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CategoryTypeCreate(_Create):
    name: TaxonName


class CategoryTypeUpdate(PatchModel):
    name: TaxonName | Keep = None


class CategoryCreate(_Create):
    type_id: uuid.UUID
    name: TaxonName


class CategoryUpdate(PatchModel):
    """Moving to another type is allowed; an unknown type is a 404."""

    type_id: uuid.UUID | Keep = None
    name: TaxonName | Keep = None


class SubcategoryCreate(_Create):
    category_id: uuid.UUID
    name: TaxonName


class SubcategoryUpdate(PatchModel):
    category_id: uuid.UUID | Keep = None
    name: TaxonName | Keep = None


class ServiceCreate(_Create):
    subcategory_id: uuid.UUID
    name: ServiceName
    description: Description = ""
    base_price: Price
    currency: Currency = "USD"


class ServiceUpdate(PatchModel):
    subcategory_id: uuid.UUID | Keep = None
    name: ServiceName | Keep = None
    description: Description | Keep = None
    base_price: Price | Keep = None
    currency: Currency | Keep = None


class CategoryTypeListQuery(ListQuery):
    """limit, page, orderby (name | created_at; default name), sort, and which rows: the
    live ones, or (ADMIN) the archived ones or all (ADR 0058)."""

    orderby: TaxonOrderBy | None = Field(None, description="Sort key; default name.")
    state: State = state_field()


class CategoryListQuery(CategoryTypeListQuery):
    type_id: uuid.UUID | None = Field(None, description="Only the categories of this type.")


class SubcategoryListQuery(CategoryTypeListQuery):
    category_id: uuid.UUID | None = Field(
        None, description="Only the subcategories of this category."
    )


class ServiceListQuery(KeysetListQuery):
    """limit, page or cursor, orderby (name | base_price | created_at; default name), sort,
    the subcategory filter and the state (ADR 0058)."""

    orderby: ServiceOrderBy | None = Field(None, description="Sort key; default name.")
    state: State = state_field()
    subcategory_id: uuid.UUID | None = Field(
        None, description="Only the services of this subcategory."
    )


class OfferedListQuery(KeysetListQuery):
    orderby: sq.ListServicesOfProviderKey | None = Field(
        None, description="Sort key; default name."
    )


class ProviderListQuery(ListQuery):
    orderby: sq.ListProvidersOfServiceKey | None = Field(
        None, description="Sort key; default provider_id."
    )
