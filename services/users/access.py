"""Who may see or change a user: self, MODERATOR/ADMIN to see, ADMIN to change another.
The operations declare it (`owner=SELF`, `any_owner`, `verified` on `@operation`); the
roles and the verified rule are enforced there, the owner rule here (it needs the path).

A caller who may not see the user gets 404 (its existence is not revealed); one who may
see it but not change it gets 403.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from lib.auth.principal import Principal, Role, is_self_or
from lib.db.runtime import PgConn
from lib.errors import AppError, Forbidden, NotFound, Unauthorized
from lib.http.guards import authenticated, path_uuid
from services.users.db import users as users_q
from services.users.db.models import User

SEE = (Role.MODERATOR, Role.ADMIN)


def target(request: web.Request, name: str = "id") -> tuple[Principal, uuid.UUID]:
    """The caller and the user `{id|me}` names (401 without a token)."""
    principal = authenticated(request)
    if request.match_info[name] == "me":
        return principal, principal.user_id
    return principal, path_uuid(request, name)


def no_such_user() -> NotFound:
    return NotFound("no such user")


async def missing(conn: PgConn, principal: Principal, user_id: uuid.UUID) -> AppError:
    """No live row for `user_id`: 401 when it is the caller's own account and it was
    deleted (a token that outlived its account), else 404."""
    if principal.user_id == user_id and await users_q.is_deleted(conn, id=user_id):
        return Unauthorized("the account of this token no longer exists")
    return no_such_user()


async def own_account(conn: PgConn, principal: Principal) -> User:
    """The caller's own row, live: a deleted or disabled account is a token that outlived
    its account (401), whichever handler it reaches."""
    row = await users_q.get_user(conn, id=principal.user_id)
    if row is None or row.disabled_at is not None:
        raise Unauthorized("the account of this token no longer exists")
    return row


def visible(request: web.Request) -> tuple[Principal, uuid.UUID]:
    principal, user_id = target(request)
    if not is_self_or(principal, user_id, *SEE):
        raise no_such_user()
    return principal, user_id


def editable(request: web.Request) -> tuple[Principal, uuid.UUID]:
    """Self or ADMIN: a MODERATOR sees another user but may not change them (403). Whether
    the caller must be verified is the operation's `verified` (checked before)."""
    principal, user_id = visible(request)
    if principal.user_id != user_id and principal.role is not Role.ADMIN:
        raise Forbidden("only the user or an ADMIN may change this user")
    return principal, user_id
