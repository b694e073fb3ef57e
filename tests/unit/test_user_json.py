"""services/users/user_json: the User shape, field by field, with and without points (a
user the points service does not know has 0; points down: null) and a picture URL."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.users.db.models import UserRole
from services.users.user_json import user_json

USER_ID = uuid.UUID("6f1c1d1e-1b1a-4c4d-8e8f-000000000001")
CREATED = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
DEPT = uuid.UUID("6f1c1d1e-1b1a-4c4d-8e8f-00000000000d")


@dataclass(frozen=True)
class Row:
    id: uuid.UUID = USER_ID
    email: str = "ada@example.com"
    first_name: str = "Ada"
    last_name: str = "Lovelace"
    phone_number: str = "+1 555 0100"
    role: UserRole = UserRole.PROVIDER
    verified: bool = False
    department_id: uuid.UUID | None = DEPT
    age: int | None = 36
    salary: Decimal | None = Decimal("1234.50")
    version: int = 7
    created_at: datetime.datetime = CREATED


def expected(**changes: Any) -> dict[str, Any]:
    return {
        "id": str(USER_ID),
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone_number": "+1 555 0100",
        "role": UserRole.PROVIDER,
        "verified": False,
        "department_id": str(DEPT),  # text already: no default hook per value in orjson
        "age": 36,
        "salary": "1234.50",
        "picture_url": None,
        "points": None,
        "version": 7,
        "created_at": CREATED,
        **changes,
    }


def test_every_field_points_down_and_no_picture() -> None:
    assert user_json(Row(), None, None) == expected()


def test_the_users_points_and_picture() -> None:
    points = {str(USER_ID): 42, str(uuid.uuid4()): 9}
    got = user_json(Row(), points, "/v1/pictures/k.png?sig=1")
    assert got == expected(points=42, picture_url="/v1/pictures/k.png?sig=1")


def test_a_user_the_points_service_does_not_know_has_zero() -> None:
    assert user_json(Row(), {str(uuid.uuid4()): 9}, None)["points"] == 0
    assert user_json(Row(), {}, None)["points"] == 0


def test_the_salary_is_never_in_exponent_form() -> None:
    """As lib.http.jsonio's hook writes a Decimal: `1E+3` is "1000", `1E-2` is "0.01"."""
    assert user_json(Row(salary=Decimal("1E+3")), None, None)["salary"] == "1000"
    assert user_json(Row(salary=Decimal("1E-2")), None, None)["salary"] == "0.01"


def test_nullable_fields_stay_null() -> None:
    row = Row(department_id=None, age=None, salary=None, verified=True)
    assert user_json(row, None, None) == expected(
        department_id=None, age=None, salary=None, verified=True
    )
