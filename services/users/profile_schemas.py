"""Input and output models of the profile routes (services/users/handlers.py, passwords.py)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field

from lib.auth.principal import Role
from lib.http.fields import single_line
from lib.http.patch import Keep, PatchModel
from services.users.auth_schemas import Strict

Name = Annotated[str, single_line(100)]
Phone = Annotated[str, single_line(32, min_length=3)]
Age = Annotated[int, Field(ge=0, le=150)]
Salary = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
Password = Annotated[str, Field(min_length=8, max_length=72)]

# Fields of the User shape nobody sets; `ADMIN_ONLY` ones only an ADMIN sets (else 403).
READ_ONLY = frozenset({"id", "email", "picture_url", "points", "version", "created_at"})
ADMIN_ONLY = frozenset({"role", "verified"})


class UserPatch(PatchModel):
    """Absent keeps, null clears (department_id, age, salary only)."""

    first_name: Name | Keep = None
    last_name: Name | Keep = None
    phone_number: Phone | Keep = None
    department_id: uuid.UUID | None = Field(
        None, description="Checked with the departments service (404 when unknown)."
    )
    age: Age | None = None
    salary: Salary | None = None
    role: Role | Keep = Field(None, description="ADMIN only.")
    verified: bool | Keep = Field(None, description="ADMIN only.")


class PasswordChange(Strict):
    old_password: Annotated[str, Field(min_length=1, max_length=72)]
    new_password: Password


class ProviderOut(BaseModel):
    """The public card of a PROVIDER."""

    id: uuid.UUID
    first_name: str
    last_name: str
    picture_url: str | None
    department_id: uuid.UUID | None
