"""The departments API's input models (output is the generated Department row)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from lib.http.fields import single_line
from lib.http.listing import ListQuery, State, state_field
from lib.http.patch import Keep, PatchModel
from services.departments.db import departments as dq

Name = Annotated[str, single_line(100)]
Address = Annotated[str, single_line(200)]

DepartmentOrderBy = dq.PageDepartmentsKey  # the list's sort keys (fixup: sort)
READ_ONLY = frozenset({"id", "version", "created_at", "updated_at", "archived_at"})


class DepartmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    address: Address


class DepartmentUpdate(PatchModel):
    """Only the fields given change (docs/recipes.md): both columns are required, so
    either may be left out but neither may be null."""

    name: Name | Keep = None
    address: Address | Keep = None


class DepartmentListQuery(ListQuery):
    """limit, page, orderby (name | address | created_at; default name), sort, and which
    rows: the live ones, or (ADMIN) the archived ones or all (ADR 0058)."""

    orderby: DepartmentOrderBy | None = Field(None, description="Sort key; default name.")
    state: State = state_field()
