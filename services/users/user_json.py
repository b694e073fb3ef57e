"""The User shape of every users response (the list, one user, PATCH)."""

from __future__ import annotations

from typing import Any

from lib.http.jsonio import decimal_text
from services.users.db.auth import RegisterUserRow
from services.users.db.models import User
from services.users.db.users import ListUsersRow

# the generated rows a user is answered from: one user, a list's, a registration's
UserRow = User | ListUsersRow | RegisterUserRow


def user_json(
    row: UserRow, points: dict[str, int] | None, picture_url: str | None
) -> dict[str, Any]:
    """`points`: the batch the points service answered (None when degraded);
    `picture_url`: already signed (lib/storage), None without a picture. The UUID and the
    Decimal become text here, as lib.http.jsonio's default hook would make them (`str`,
    `decimal_text`): orjson calls that Python hook once per value (a list page: 100
    calls, ~15 µs; ADR 0013)."""
    user_id = str(row.id)
    department_id, salary = row.department_id, row.salary
    return {
        "id": user_id,
        "email": row.email,
        "first_name": row.first_name,
        "last_name": row.last_name,
        "phone_number": row.phone_number,
        "role": row.role,
        "verified": row.verified,
        "department_id": None if department_id is None else str(department_id),
        "age": row.age,
        "salary": None if salary is None else decimal_text(salary),
        "picture_url": picture_url,
        "points": None if points is None else points.get(user_id, 0),
        "version": row.version,
        "created_at": row.created_at,
    }
