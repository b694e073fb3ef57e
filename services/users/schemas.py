"""The users API's input and output models."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, Field

from lib.auth.principal import Role
from lib.http.cursor import KeysetListQuery
from lib.http.fields import single_line
from services.users.db import users as users_q

UserOrderBy = users_q.ListUsersKey  # the list's sort keys (fixup: sort)
ORDERBY: tuple[str, ...] = get_args(UserOrderBy)  # the first is the default


class UserListQuery(KeysetListQuery):
    """limit, page or cursor, orderby, sort, and the filters search, role, department_id,
    verified."""

    orderby: UserOrderBy | None = Field(None, description="Sort key; default last_name.")
    search: Annotated[str, single_line(100)] | None = Field(
        None, description="Part of the name or email (case-insensitive)."
    )
    role: Role | None = None
    department_id: uuid.UUID | None = None
    verified: bool | None = None


class UserOut(BaseModel):
    """A user as the API shows it (points from the points service; null when degraded)."""

    id: uuid.UUID
    email: str
    first_name: str
    last_name: str
    phone_number: str
    role: Role
    verified: bool
    department_id: uuid.UUID | None
    age: int | None
    salary: Decimal | None
    picture_url: str | None
    points: int | None
    version: int
    created_at: datetime.datetime


class Range(BaseModel):
    min: Decimal | int | None
    max: Decimal | int | None
    avg: Decimal | None


class Statistics(BaseModel):
    count: int
    age: Range
    salary: Range


class UserListMeta(BaseModel):
    """The users list's meta beyond the page's: what the handler adds."""

    statistics: Statistics
    degraded: list[Literal["points"]] | None = None  # present only when points is away
