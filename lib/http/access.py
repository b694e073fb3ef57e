"""Who may call an operation: declared once on `@operation`, enforced, documented.

Enforced here before the handler runs; the OpenAPI (lib/http/openapi.py) shows the same
fields.

- `roles`: None for a public route; else the roles that may call it at all (`()` or
  `EVERY_ROLE`: any signed-in caller). No token: 401; another role: 403. Both before the
  handler, whatever the resource (nothing revealed).
- `verified`: the caller's email must be verified (403), but for the `any_owner` roles.
- `owner`: who among those roles may act on one resource (`SELF`: the user or provider
  `{id}` names, or `me`; else a phrase such as "the order's customer"). It depends on the
  row, so the handler or its SQL checks it (404 for who may not see the resource, 403 for
  who sees but may not act); the declaration makes the docs and the role matrix say so.
- `any_owner`: the roles that act on anyone's resource (an ADMIN).
- `query_roles`: query parameters only some roles may give (an archiving list's `state`,
  ADR 0058), read from the query model's fields whose JSON schema says `x-roles`: checked
  with the rest (401/403) before the handler and before a 304 or a kept page, so a page
  rendered for an ADMIN is never answered to anyone else (lib/http/conditional.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from lib.auth.principal import Principal, Role, require_role, require_verified
from lib.errors import Unauthorized
from lib.http.keys import principal_of

EVERY_ROLE: tuple[str, ...] = tuple(str(role) for role in Role)  # any signed-in caller
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}  # a write: cookie callers need Origin
SELF = "self"  # `owner`: the user the path's `{id}` (or `me`) names

Authenticate = Callable[[web.Request], Awaitable[Principal]]


@dataclass(frozen=True)
class Access:
    roles: tuple[Role, ...] | None
    owner: str = ""
    any_owner: tuple[Role, ...] = ()
    verified: bool = False
    # how the route reads its token when not as the auth middleware does (the WebSocket's
    # subprotocol); it raises 401/403 itself
    authenticate: Authenticate | None = None
    # parameter, who may give it, and its default (which anyone may give: Swagger UI's "Try
    # it out" sends a parameter's default)
    query_roles: tuple[tuple[str, tuple[Role, ...], str], ...] = ()

    @classmethod
    def declare(
        cls,
        roles: tuple[str, ...] | None,
        *,
        owner: str = "",
        any_owner: tuple[str, ...] = (),
        verified: bool = False,
        authenticate: Authenticate | None = None,
        query: type[BaseModel] | None = None,
    ) -> Access:
        """Checked when the module is imported: an unknown role name fails at once."""
        if roles == ():
            roles = EVERY_ROLE
        if roles is None and (owner or any_owner or verified):
            raise ValueError("a public operation has no owner, any_owner or verified rule")
        if not set(any_owner) <= set(roles or ()):
            raise ValueError("any_owner roles must be among the roles")
        return cls(
            roles=None if roles is None else tuple(Role(r) for r in roles),
            owner=owner,
            any_owner=tuple(Role(r) for r in any_owner),
            verified=verified,
            authenticate=authenticate,
            query_roles=query_roles(query),
        )

    async def enforce(self, request: web.Request) -> None:
        """401 without a principal, 403 for a role not declared or an unverified caller,
        or for a query parameter the caller's role may not give."""
        if self.roles is not None:
            if self.authenticate is not None:
                self.check(await self.authenticate(request))
            else:
                self.check(principal_of(request))
        self.check_query(request)

    def check_query(self, request: web.Request) -> None:
        """A query parameter of `query_roles` given by a caller without one of its roles:
        401 without a principal, else 403."""
        for name, roles, default in self.query_roles:
            if request.query.get(name, default) != default:
                principal = principal_of(request)
                if principal is None:
                    raise Unauthorized(f"`{name}` needs a signed-in caller")
                require_role(principal, *roles)

    def check(self, principal: Principal | None) -> None:
        """`enforce` for a caller already known: a plain call, no coroutine (the hot path
        of every guarded route, lib/http/openapi.py)."""
        if self.roles is None:
            return
        if principal is None:
            raise Unauthorized("authentication required")
        require_role(principal, *self.roles)
        if self.verified and principal.role not in self.any_owner:
            require_verified(principal)

    def text(self) -> str:
        """The sentence the OpenAPI description shows."""
        if self.roles is None:
            return ""
        anyone = set(self.roles) == set(Role)
        parts = ["Roles: any signed-in caller." if anyone else f"Roles: {', '.join(self.roles)}."]
        if self.owner:
            whom = "the user themself (`me` or their id)" if self.owner == SELF else self.owner
            rest = f"; {', '.join(self.any_owner)}: anyone's" if self.any_owner else ""
            parts.append(f"Owner only: {whom}{rest}.")
        if self.verified:
            exempt = f" ({', '.join(self.any_owner)} exempt)" if self.any_owner else ""
            parts.append(f"Verified accounts only{exempt}.")
        return " ".join(parts)

    def query_text(self) -> str:
        """What the description adds for `query_roles` ("" without)."""
        return "".join(
            f" `{name}` other than {default}: {', '.join(roles)} only."
            for name, roles, default in self.query_roles
        )

    def extension(self) -> dict[str, Any]:
        """`x-access` of the operation: the same declaration, machine-readable."""
        assert self.roles is not None
        return {
            "roles": [str(r) for r in self.roles],
            "owner": self.owner or None,
            "any_owner": [str(r) for r in self.any_owner],
            "verified": self.verified,
        }


def query_roles(
    model: type[BaseModel] | None,
) -> tuple[tuple[str, tuple[Role, ...], str], ...]:
    """The query parameters of `model` that only some roles may give other than their
    default: each field whose JSON schema says `x-roles` (what the OpenAPI document shows
    on the parameter)."""
    if model is None:
        return ()
    found = []
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and isinstance(roles := extra.get("x-roles"), list):
            roles_of = tuple(Role(str(r)) for r in roles)
            found.append((info.alias or name, roles_of, str(info.default)))
    return tuple(found)
