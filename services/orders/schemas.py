"""The orders API's input models (output is the generated row of each query)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from lib.http.cursor import KeysetListQuery
from lib.http.fields import json_number, single_line
from lib.http.listing import ListQuery
from lib.http.patch import Keep, PatchModel
from services.orders.db.models import JobStatus, OrderStatus

# Several lines allowed: no control characters but tab, LF and CR (text cannot hold NUL).
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=_TEXT)
]
Message = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000, pattern=_TEXT)]
Address = Annotated[str, single_line(500)]
Price = Annotated[
    Decimal,
    Field(gt=0, max_digits=12, decimal_places=2),
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$"}),
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")]
# a JSON number (a numeric string is refused: docs/api.md); answered as a decimal string
Rating = Annotated[
    Decimal,
    BeforeValidator(json_number),
    Field(ge=Decimal("0.5"), le=5, multiple_of=Decimal("0.5")),
    WithJsonSchema({"type": "number", "minimum": 0.5, "maximum": 5, "multipleOf": 0.5}),
]
Search = Annotated[str, single_line(200)]

READ_ONLY = frozenset(
    {"id", "customer_id", "customer_name", "status", "version", "created_at", "updated_at"}
)


class _Create(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderCreate(_Create):
    service_id: uuid.UUID
    description: Description
    address: Address
    time_start: AwareDatetime
    time_end: AwareDatetime

    @model_validator(mode="after")
    def _ends_after_start(self) -> OrderCreate:
        if self.time_end <= self.time_start:
            raise ValueError("time_end must be after time_start")
        return self


class OrderUpdate(PatchModel):
    """time_end must stay after time_start (400)."""

    description: Description | Keep = None
    address: Address | Keep = None
    time_start: AwareDatetime | Keep = None
    time_end: AwareDatetime | Keep = None


class OfferCreate(_Create):
    price: Price
    currency: Currency
    book_time: AwareDatetime
    message: Message | None = None


class ReviewCreate(_Create):
    rating: Rating
    comment: Message | None = None


class OrderListQuery(KeysetListQuery):
    """limit, page, orderby (created_at), sort (default desc), and the filters."""

    orderby: Literal["created_at"] | None = Field(None, description="Sort key; created_at.")
    sort: Literal["asc", "desc"] = Field("desc", description="Sort direction; newest first.")
    status: OrderStatus | None = Field(None, description="Only orders in this state.")
    service_id: uuid.UUID | None = Field(None, description="Only orders of this service.")
    search: Search | None = Field(None, description="Words of the description or address.")


class OfferListQuery(ListQuery):
    orderby: Literal["created_at"] | None = Field(None, description="Sort key; created_at.")


class JobListQuery(KeysetListQuery):
    """limit, page, orderby (created_at), sort (default desc), status."""

    orderby: Literal["created_at"] | None = Field(None, description="Sort key; created_at.")
    sort: Literal["asc", "desc"] = Field("desc", description="Sort direction; newest first.")
    status: JobStatus | None = Field(None, description="Only jobs in this state.")


class ReviewListQuery(KeysetListQuery):
    orderby: Literal["created_at"] | None = Field(None, description="Sort key; created_at.")
    sort: Literal["asc", "desc"] = Field("desc", description="Sort direction; newest first.")


class ReviewListMeta(BaseModel):
    """The reviews list's meta beyond the page's."""

    avg_rating: Decimal | None


class CurrencyListQuery(ListQuery):
    orderby: Literal["code"] | None = Field(None, description="Sort key; code.")
