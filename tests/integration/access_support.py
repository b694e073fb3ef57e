"""The role matrix's machinery: each service's operations as its OpenAPI document declares
them (`x-access`), the callers, what each caller must get, and one call.

The expectations come from the declaration alone (lib/http/access.py), so a route whose
enforcement drifts from what its document says fails the matrix."""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from lib.http.access import SELF
from lib.http.openapi import declared
from tests.integration.auth_support import KEYS, TEST_TOKEN_TTL

METHODS = ("get", "put", "post", "patch", "delete")


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    operation_id: str
    access: dict[str, Any] | None  # x-access; None: public

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


@dataclass(frozen=True)
class Caller:
    name: str
    role: Role | None  # None: anonymous
    verified: bool
    user_id: uuid.UUID | None = None

    def headers(self) -> dict[str, str]:
        if self.role is None or self.user_id is None:
            return {}
        value, _ = TokenSigner(KEYS[0], TEST_TOKEN_TTL).issue(  # make_user's session
            self.user_id, self.role, self.verified, session_id=self.user_id
        )
        return {"Authorization": f"Bearer {value}"}


def callers(make_id: Callable[[Role], uuid.UUID]) -> list[Caller]:
    """Anonymous, every role verified, every role unverified (ids from `make_id`)."""
    made = [Caller("anonymous", None, True)]
    for verified in (True, False):
        for role in Role:
            name = str(role) if verified else f"unverified {role}"
            made.append(Caller(name, role, verified, make_id(role)))
    return made


def operations(spec: dict[str, Any]) -> list[Op]:
    return [
        Op(method, path, item["operationId"], item.get("x-access"))
        for path, methods in spec["paths"].items()
        for method, item in methods.items()
        if method in METHODS
    ]


def undocumented_or_unguarded(app: Any, spec: dict[str, Any]) -> list[str]:
    """Routes with an `@operation` the document lacks, or whose guard is not outermost
    (something would answer before the access check)."""
    documented = {(op.method, op.path) for op in operations(spec)}
    wrong = []
    for route in app.router.routes():
        guard = inspect.unwrap(route.handler, stop=lambda f: declared(f) is not None)
        op = declared(guard)
        if op is None or route.method == "HEAD" or route.resource is None:
            continue
        key = (route.method.lower(), route.resource.canonical)
        if key not in documented:
            wrong.append(f"{key}: not in the document")
        if guard is not route.handler:
            wrong.append(f"{key}: @operation is not the outermost decorator")
    return wrong


def expected(op: Op, who: Caller) -> str:
    """'401', '403', 'allowed', or 'public' (the same answer whoever calls)."""
    access = op.access
    if access is None:
        return "public"
    if who.role is None:
        return "401"
    if str(who.role) not in access["roles"]:
        return "403"
    if access["verified"] and not who.verified and str(who.role) not in access["any_owner"]:
        return "403"
    return "allowed"


def fill(path: str, op: Op, values: dict[str, str] | None = None) -> str:
    """The path with its parameters: `me` for the caller's own user, else the id `values`
    gives for the collection the parameter follows (`/orders/{id}` -> values['orders']),
    else a fresh UUID (nothing: 404 for a caller who passes the gate)."""

    def one(match: re.Match[str]) -> str:
        collection, name = match.group(1), match.group(2)
        if values is not None:
            return values.get(f"{collection}/{name}", values.get(collection, str(uuid.uuid4())))
        if name == "id" and op.access is not None and op.access["owner"] == SELF:
            return "me"
        if name == "key":
            return "nothing.png"
        return str(uuid.uuid4())

    return re.sub(r"(?:/([\w-]+))?/\{(\w+)\}", lambda m: f"/{m.group(1)}/{one(m)}", path)


async def call(client: Any, op: Op, path: str, headers: dict[str, str], **kw: Any) -> Any:
    return await client.request(op.method.upper(), path, headers=headers, **kw)


async def refusal(resp: Any, status: int) -> str | None:
    """None when `resp` is the problem+json refusal `status` should be, else why not."""
    text = await resp.text()
    if resp.status != status:
        return f"{resp.status} {text[:160]}"
    code = {401: "UNAUTHORIZED", 403: "FORBIDDEN"}[status]
    if resp.content_type != "application/problem+json" or f'"code":"{code}"' not in text.replace(
        " ", ""
    ):
        return f"{status} but not a {code} problem: {text[:160]}"
    return None
