"""What a route declares, and OpenAPI 3.1 from it (apispec).

A handler describes itself with `@operation(...)`: one typed `Operation`, which
`declared(handler)` returns to whoever needs it (the auth middleware: `anonymous`; the 304
middleware: `conditional`; `build_spec(app)`: the rest), so the served document and
`make swag-gen` can never disagree with the code. Who may call it (`roles`, `owner`,
`any_owner`, `verified`) is declared there once: `@operation` enforces it before the
handler runs and the document shows it (lib/http/access.py).
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from apispec import APISpec
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from lib.auth.principal import Role
from lib.http.access import UNSAFE_METHODS, Access, Authenticate
from lib.http.keys import PRINCIPAL
from lib.http.openapi_bodies import (
    ERROR_TEXT,
    PROBLEM_SCHEMA,
    cursor_page_schema,
    data_schema,
    keyset_page_schema,
    page_schema,
)
from lib.http.openapi_examples import add_examples, load
from lib.http.openapi_io import Form, Header, binary_content, path_schema, tag_objects
from lib.http.stamps import ListStamp, Stamp

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
# every document's licence (the repository's LICENSE) and whom to contact (SECURITY.md says
# how to report a vulnerability); a team that ships its fork sets its own here
LICENSE = {"name": "MIT", "identifier": "MIT"}
CONTACT = {
    "name": "Fixup maintainers",
    "email": "security@fixup.example",
    "url": "https://fixup.example/security",
}


@dataclass(frozen=True)
class Operation:
    summary: str
    tags: list[str]
    response: Any = None  # a pydantic model or dataclass (the item inside "data")
    status: int = 200
    also: tuple[int, ...] = ()  # other success statuses with the same body (200 "existing")
    enveloped: bool = True  # False: the body is the response itself (a JWK Set), no "data"
    paged: bool = False  # offset-paged: meta {total, limit, page}
    cursor_paged: bool = False  # keyset-paged: meta {limit, next_cursor}; both: either
    meta: type[BaseModel] | None = None  # a list's meta fields beyond the page's own
    body: type[BaseModel] | None = None
    form: Form | None = None  # a multipart body instead of JSON (lib/http/openapi_io.py)
    query: type[BaseModel] | None = None
    headers: tuple[Header, ...] = ()  # request headers the handler reads itself
    produces: tuple[str, ...] = ()  # the success body is a file of one of these types
    me: bool = False  # `{id}` may be `me`
    roles: tuple[str, ...] | None = None  # None: public (lib/http/access.py)
    owner: str = ""
    any_owner: tuple[str, ...] = ()
    verified: bool = False
    authenticate: Authenticate | None = None
    anonymous: bool = False  # public and credentials ignored: a stale token never refuses
    errors: tuple[int, ...] = ()
    if_match: bool = False
    etag: bool = False
    # a GET answering If-None-Match (lib/http/conditional.py): an item's `Stamp`, a list's
    conditional: Stamp | ListStamp | None = None
    idempotent: bool = False
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    access: Access = field(init=False)

    def __post_init__(self) -> None:
        if self.anonymous and self.roles is not None:
            raise ValueError("an anonymous route declares no roles")
        access = Access.declare(
            self.roles,
            owner=self.owner,
            any_owner=self.any_owner,
            verified=self.verified,
            authenticate=self.authenticate,
            query=self.query,
        )
        object.__setattr__(self, "access", access)  # frozen: set once, here

    @property
    def operation_id(self) -> str:
        """The document's operationId: `extra`'s, else the summary in camelCase."""
        return self.extra.get("operationId") or _operation_id(self.summary)


# each route handler `@operation` returned -> its declaration (weak: a test's app goes away)
DECLARED: weakref.WeakKeyDictionary[Callable[..., Any], Operation] = weakref.WeakKeyDictionary()


def declared(handler: Callable[..., Any]) -> Operation | None:
    """What `handler` declares, when it is the guard `@operation` made; None for a route
    without one, or one wrapped again (something would answer before the access check)."""
    return DECLARED.get(handler)


def operation(summary: str, **kwargs: Any) -> Callable[[F], F]:
    """Describe a handler and guard it: its declared access is checked before it runs.
    Put it outermost (right under the route), so nothing (an idempotent replay) answers
    before the check: only the handler it returns is `declared`.

    What the guard does is decided here, once: a public route keeps its handler as it is
    (no wrapper, nothing per request), a route the auth middleware authenticates checks
    the principal with a plain call, and only a route that reads its own token awaits it
    (ADR 0005: a wrapper awaiting a coroutine cost ~1% of the list endpoint)."""

    def mark(handler: F) -> F:
        op = Operation(summary, **kwargs)
        access = op.access
        if access.roles is None and not access.query_roles:
            guard: Any = handler
        elif access.authenticate is None:
            check, check_query = access.check, access.check_query

            @functools.wraps(handler)
            async def guard(request: Any) -> Any:
                check(request.get(PRINCIPAL))
                check_query(request)
                return await handler(request)

        else:
            enforce = access.enforce

            @functools.wraps(handler)
            async def guard(request: Any) -> Any:
                await enforce(request)
                return await handler(request)

        DECLARED[guard] = op
        return guard  # type: ignore[no-any-return]

    return mark


class _Builder:
    def __init__(self, spec: APISpec) -> None:
        self.spec = spec
        self.known: set[str] = set()

    def ref(self, model: Any) -> dict[str, Any]:
        name = model.__name__
        if name not in self.known:
            schema = self.inline(model, mode="serialization")
            self.known.add(name)
            self.spec.components.schema(name, schema)
        return {"$ref": f"#/components/schemas/{name}"}

    def extend_meta(self, meta: dict[str, Any], model: type[BaseModel]) -> None:
        """Add `model`'s fields to a list's `meta` (the users' statistics, the reviews'
        average): inline, so a validator that allows no unknown property accepts them."""
        schema = self.inline(model, mode="serialization")
        meta["properties"] |= schema.get("properties", {})
        meta["required"] = [*meta["required"], *schema.get("required", [])]

    def inline(self, model: Any, mode: JsonSchemaMode = "validation") -> dict[str, Any]:
        """`model`'s own schema (a pydantic model or dataclass), its nested models and enums
        registered as components."""
        adapter: TypeAdapter[Any] = TypeAdapter(model)
        schema = adapter.json_schema(ref_template="#/components/schemas/{model}", mode=mode)
        for def_name, definition in schema.pop("$defs", {}).items():
            if def_name not in self.known:
                self.known.add(def_name)
                self.spec.components.schema(def_name, definition)
        return schema

    def query_parameters(self, model: type[BaseModel]) -> list[dict[str, Any]]:
        schema = self.inline(model)
        params = []
        for name, prop in schema.get("properties", {}).items():
            prop = dict(prop)
            description = prop.pop("description", "")
            prop.pop("title", None)
            required = name in schema.get("required", [])
            params.append(
                {"name": name, "in": "query", "required": required, "schema": prop}
                | ({"description": description} if description else {})
            )
        return params

    def operation(self, path: str, op: Operation, *, write: bool = False) -> dict[str, Any]:
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": path_schema(name, op.me)}
            for name in re.findall(r"{(\w+)}", path)
        ]
        params += [header.parameter() for header in op.headers]
        if op.query is not None:
            params += self.query_parameters(op.query)
        if op.if_match:
            params.append(
                {
                    "name": "If-Match",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "pattern": r'^(W/)?"[0-9]{1,9}"$'},
                    "description": "The ETag last seen (optimistic concurrency).",
                }
            )
        if op.idempotent:
            params.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
                    "description": "Repeating a key within 24 h returns the first response.",
                }
            )
        result: dict[str, Any] = {
            "summary": op.summary,
            "tags": op.tags,
            "operationId": op.operation_id,
            "responses": self.responses(op, write=write),
        }
        if op.description:
            result["description"] = op.description
        if params:
            result["parameters"] = params
        if op.body is not None:
            result["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": self.ref(op.body)}},
            }
        elif op.form is not None:
            result["requestBody"] = op.form.request_body()
        if op.access.roles is None:
            # public: explicitly no credentials, or optional ones for a parameter of a role
            optional: list[dict[str, list[str]]] = [{}, {"bearer": []}, {"cookie": []}]
            result["security"] = optional if op.access.query_roles else []
            public = "Public: no credentials." + op.access.query_text()
            result["description"] = f"{op.description}\n\n{public}".strip()
        else:
            result["security"] = [{"bearer": []}, {"cookie": []}]
            result["description"] = f"{op.description}\n\n{op.access.text()}".strip()
            result["x-access"] = op.access.extension()
        return result

    def responses(self, op: Operation, *, write: bool = False) -> dict[str, Any]:
        responses: dict[str, Any] = {}
        headers = {"ETag": {"schema": {"type": "string"}}} if op.etag else {}
        if op.produces:
            responses[str(op.status)] = {
                "description": "The file.",
                "content": binary_content(op.produces),
            }
        elif op.status == 101:
            responses["101"] = {"description": "Switching Protocols: the WebSocket is open."}
        elif op.response is None:
            responses[str(op.status)] = {"description": "Done, no content."}
        else:
            item = self.ref(op.response)
            if op.cursor_paged and op.paged:
                body = keyset_page_schema(item)
            elif op.cursor_paged:
                body = cursor_page_schema(item)
            else:
                body = page_schema(item) if op.paged else data_schema(item)
            if not op.enveloped:
                body = item
            if op.meta is not None:
                self.extend_meta(body["properties"]["meta"], op.meta)
            for status in (op.status, *op.also):
                responses[str(status)] = {
                    "description": "Success.",
                    "content": {"application/json": {"schema": body}},
                } | ({"headers": headers} if headers else {})
        codes = set(op.errors) | {429}
        if op.access.query_roles:  # a parameter some roles may not give
            codes |= {401, 403}
        if op.access.roles is not None:
            codes |= {401}
            if set(op.access.roles) != set(Role) or op.access.verified:
                codes |= {403}  # a role not declared, an unverified caller
            if write:  # a cookie-authenticated write without an allowed Origin
                codes |= {403}
        if op.body is not None or op.form is not None:
            codes |= {400, 413, 415}
        if op.query is not None:
            codes |= {400}
        if op.if_match:
            codes |= {400, 412, 428}
        if op.idempotent:  # a malformed key; a key used before for another request
            codes |= {400, 409}
        for code in sorted(codes):
            text = ERROR_TEXT.get(code, "Error")
            if code == 415 and op.form is not None:
                text = "Body is not multipart/form-data (UNSUPPORTED_MEDIA_TYPE)"
            responses[str(code)] = {
                "description": text,
                "content": {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                },
            }
        return responses


def _operation_id(summary: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", summary)
    return words[0].lower() + "".join(w.capitalize() for w in words[1:]) if words else "op"


def build_spec(app: web.Application, *, service: str, title: str, version: str) -> dict[str, Any]:
    spec = APISpec(
        title=title,
        version=version,
        openapi_version="3.1.0",
        info={
            "description": f"The {service} service of Fixup.",
            "license": LICENSE,
            "contact": CONTACT,
        },
        servers=[{"url": f"/api/{service}"}],
    )
    spec.components.schema("Problem", PROBLEM_SCHEMA)
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    spec.components.security_scheme(
        "cookie", {"type": "apiKey", "in": "cookie", "name": "fixup_access"}
    )
    builder = _Builder(spec)
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        op = declared(route.handler)
        if op is None or route.resource is None or route.method == "HEAD":
            continue
        path = route.resource.canonical
        operation = builder.operation(path, op, write=route.method in UNSAFE_METHODS)
        paths.setdefault(path, {})[route.method.lower()] = operation
    add_links(paths)
    add_examples(paths, load(service))  # lifted from the executed pages
    for tag in tag_objects(paths):
        spec.tag(tag)
    for path in sorted(paths):
        spec.path(path=path, operations=dict(sorted(paths[path].items())))
    result: dict[str, Any] = spec.to_dict()
    return result


def add_links(paths: dict[str, dict[str, Any]]) -> None:
    """OpenAPI links from each create (POST `P` answering 201 with `data.id`) to every
    operation under `P/{id}` that takes no other path parameter: the id of the answer
    fills `{id}`, its ETag the If-Match. Clients and stateful fuzzers follow them."""
    for path, item in paths.items():
        create = item.get("post", {}).get("responses", {}).get("201", {})
        if "content" not in create or "{" in path:
            continue
        links: dict[str, Any] = {}
        for target_path, target_item in paths.items():
            rest = target_path.removeprefix(path + "/{id}")
            if rest == target_path or "{" in rest:
                continue
            for target in target_item.values():
                parameters = {"path.id": "$response.body#/data/id"}
                if any(p["name"] == "If-Match" for p in target.get("parameters", [])):
                    if "headers" not in create:  # no ETag to send back: no link
                        continue
                    parameters["header.If-Match"] = "$response.header.ETag"
                links[target["operationId"]] = {
                    "operationId": target["operationId"],
                    "parameters": parameters,
                }
        if links:
            create["links"] = dict(sorted(links.items()))
