"""Who is calling: the principal an access token names, and the role guards.

A guard raises `lib.errors.Forbidden`; the HTTP layer renders it as 403. Authentication
failures (no token, a bad token) are `Unauthorized` and belong to `lib.auth.tokens`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from lib.errors import Forbidden


class Role(StrEnum):
    CUSTOMER = "CUSTOMER"
    PROVIDER = "PROVIDER"
    MODERATOR = "MODERATOR"
    ADMIN = "ADMIN"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as a verified access token describes it."""

    user_id: uuid.UUID
    role: Role
    verified: bool
    token_id: str
    expires_at: datetime
    issued_at_ms: int = 0  # `iat` in ms: compared with revocations (lib.auth.revocation)
    session_id: uuid.UUID | None = None  # `sid`: the users service's session (refresh family)


def _roles_text(roles: tuple[Role, ...]) -> str:
    names = [str(role) for role in roles]
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} or {names[-1]}"


def require_role(principal: Principal, *roles: Role) -> None:
    """Pass when the principal has one of `roles`; else Forbidden("requires role X or Y")."""
    if not roles:
        raise ValueError("require_role needs at least one role")
    if principal.role not in roles:
        raise Forbidden(f"requires role {_roles_text(roles)}")


def require_verified(principal: Principal) -> None:
    """Pass when the principal's account is verified; else Forbidden."""
    if not principal.verified:
        raise Forbidden("account not verified")


def is_self_or(principal: Principal, user_id: uuid.UUID, *roles: Role) -> bool:
    """True when the principal is `user_id` itself or has one of `roles`."""
    return principal.user_id == user_id or principal.role in roles
