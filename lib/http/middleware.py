"""The middleware chain of every HTTP app, one job per layer.

The order is declared once, by `chain` (create_app uses it; docs/architecture.md, "The
path of a request", walks it step by step), outermost first:

[the server span, when tracing is on (lib/tracing.py)] -> security headers -> request id
-> database scope -> CORS -> access log and metrics -> errors -> per-IP rate limit -> auth
-> per-user rate limit -> a conditional GET's 304 (lib/http/conditional.py) -> a write's
transaction and audit event (lib/http/audit.py) -> the operation's guard -> handler.
What a route declares (`anonymous`, `conditional`) is read from its one `Operation`
(lib.http.openapi.declared).
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from lib import tracing
from lib.config import ServiceSettings
from lib.db.scope import enter_scope, exit_scope
from lib.errors import AppError, BadRequest, Forbidden, Unauthorized
from lib.forwarding import ACCESS_COOKIE
from lib.http import problems
from lib.http.access import UNSAFE_METHODS
from lib.http.audit import audit_middleware
from lib.http.conditional import not_modified_middleware
from lib.http.keys import (
    AUTH,
    CLIENT_IP,
    LIMITS,
    PRINCIPAL,
    REQUEST_ID,
    REVOCATIONS,
    SETTINGS,
    principal_of,
    request_id,
)
from lib.http.openapi import declared
from lib.logging import access_log, get_logger
from lib.metrics import HTTP_DURATION, HTTP_IN_FLIGHT, HTTP_REQUESTS
from lib.redact import redact_query, secret_params
from lib.resilience.ratelimit import enforce

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_FORMAT = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")
log = get_logger("lib.http")


def route_template(request: web.Request) -> str:
    """The route's template (`/v1/departments/{id}`), never the raw path: bounded labels."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The request's server span, named by the route template, continuing the incoming
    `traceparent`; outermost, so every log line of the request carries its ids. Only in
    the chain when tracing is on (create_app); probes and scrapes are not traced."""
    if request.path in EXEMPT:
        return await handler(request)
    name = f"{request.method} {route_template(request)}"
    span, token = tracing.start_server_span(name, request.headers.get(tracing.TRACEPARENT))
    try:
        response = await handler(request)
        if span.is_recording():
            span.set_attribute("http.response.status_code", response.status)
        return response
    except BaseException as exc:  # the inner layers answer errors; this is a lost client
        tracing.fail(span, type(exc).__name__)
        raise
    finally:
        tracing.end_span(span, token)


class RequestIds:
    """Ids for requests that bring none: UUID-shaped (version 4, a random 74-bit prefix
    per process, then a 48-bit sequence), so unique across processes and replicas like
    uuid4's, at 0.4 µs where str(uuid.uuid4()) costs 3 (a urandom call and a Python UUID
    per request; ADR 0005). A forked worker draws its own prefix."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.prefix = str(uuid.uuid4())[:24]  # "xxxxxxxx-xxxx-4xxx-yxxx-"
        self.sequence = itertools.count()

    def new(self) -> str:
        return f"{self.prefix}{next(self.sequence) & 0xFFFF_FFFF_FFFF:012x}"


REQUEST_IDS = RequestIds()


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The headers every response carries, errors and preflights included; no-store when
    authenticated. Outermost: nothing answers past it."""
    response = await handler(request)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    if principal_of(request) is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The request id: taken from X-Request-ID when well-formed, else made; bound to every
    log line and sent back."""
    incoming = request.headers.get("X-Request-ID", "")
    rid = incoming if incoming and REQUEST_ID_FORMAT.match(incoming) else REQUEST_IDS.new()
    request[REQUEST_ID] = rid
    # overwrite, not clear: cheaper, and a keep-alive connection's next request starts clean
    structlog.contextvars.bind_contextvars(request_id=rid, user_id=None)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # raised outside the error middleware (e.g. 404 routing)
        response = problems.from_http_exception(exc, rid)
    response.headers["X-Request-ID"] = rid
    return response


@web.middleware
async def database_scope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The request's database scope: at most one pooled connection per request, lent to
    every nested acquire (lib.db.scope)."""
    scope = enter_scope()
    try:
        return await handler(request)
    finally:
        exit_scope(scope)


def cors_middleware(allowed: list[str]) -> Any:
    allowed_set = set(allowed)

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin", "")
        preflight = (
            request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        )
        if preflight and origin in allowed_set:
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
            response.headers["Access-Control-Allow-Headers"] = (
                "Authorization, Content-Type, If-Match, Idempotency-Key, X-Request-ID"
            )
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await handler(request)
        if origin in allowed_set:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Expose-Headers"] = "ETag, X-Request-ID, Retry-After"
            response.headers["Vary"] = "Origin"
        return response

    return cors


def observe_middleware(service: str, redact_params: Iterable[str] = ()) -> Any:
    """The access log line and the request metrics (count, duration, in flight) of every
    request. One layer for both: they time the same span and read the same route and
    status, and a layer of its own costs more than either's bookkeeping (ADR 0005).
    The line's `query` has the values of secret parameters replaced (lib/redact.py)."""
    in_flight = HTTP_IN_FLIGHT.labels(service)
    secret = secret_params(redact_params)
    # (method, route, status) -> its counter and the (method, route) histogram: label
    # lookups are the costly part, so each child is looked up once per process
    series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        status = 500
        in_flight.inc()
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            in_flight.dec()
            elapsed = time.perf_counter() - start
            route = route_template(request)
            method = request.method
            key = (method, route, status)
            found = series.get(key)
            if found is None:
                found = series[key] = (
                    HTTP_REQUESTS.labels(service, method, route, str(status)),
                    HTTP_DURATION.labels(service, method, route),
                )
            found[0].inc()
            found[1].observe(elapsed)
            principal = request.get(PRINCIPAL)
            access_log.write(
                request.get(REQUEST_ID, ""),
                method=method,
                route=route,
                path=request.path,
                query=redact_query(request.rel_url.raw_query_string, secret),
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                user_id=str(principal.user_id) if principal is not None else None,
                client_ip=request.get(CLIENT_IP),
            )

    return observe


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request_id(request)
    try:
        return await handler(request)
    except AppError as exc:
        if tracing.ENABLED:
            tracing.record_problem(exc.code, exc.status)
        return problems.from_app_error(exc, rid)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if tracing.ENABLED:
            tracing.record_problem(problems.code_of(exc.status), exc.status)
        return problems.from_http_exception(exc, rid)
    except web.RequestPayloadError:  # aiohttp could not decode the body (Content-Encoding)
        undecodable = BadRequest("the request body could not be decoded (its Content-Encoding)")
        return problems.from_app_error(undecodable, rid)
    except Exception as exc:
        log.exception("unhandled_error", error=repr(exc))
        if tracing.ENABLED:
            tracing.record_problem("INTERNAL_ERROR", 500)
        return problems.internal_error(rid)


class ClientIps:
    """The caller's address: the socket peer, or X-Real-IP when the peer is a trusted proxy
    (NGINX). Each (peer, X-Real-IP) pair is resolved once: parsing addresses costs more
    than the rest of the middleware together (bounded: the table starts over when full)."""

    def __init__(self, trusted_proxies: list[str], size: int = 4096) -> None:
        self.trusted = tuple(ipaddress.ip_network(n, strict=False) for n in trusted_proxies)
        self._size = size
        self._known: dict[tuple[str, str], str] = {}

    def of(self, request: web.Request) -> str:
        key = (request.remote or "", request.headers.get("X-Real-IP", ""))
        ip = self._known.get(key)
        if ip is None:
            if len(self._known) >= self._size:
                self._known.clear()
            ip = self._known[key] = self._resolve(*key)
        return ip

    def _resolve(self, peer: str, real_ip: str) -> str:
        try:
            peer_ip = ipaddress.ip_address(peer)
        except ValueError:
            return peer
        if real_ip and any(peer_ip in net for net in self.trusted):
            try:
                return str(ipaddress.ip_address(real_ip.strip()))
            except ValueError:
                return peer
        return peer


def ip_limit_middleware(trusted_proxies: list[str]) -> Any:
    client_ips = ClientIps(trusted_proxies)

    @web.middleware
    async def ip_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        ip = client_ips.of(request)
        request[CLIENT_IP] = ip
        limits = request.app.get(LIMITS)
        if limits is not None and request.path not in EXEMPT:
            await enforce(limits.ip, f"ip:{ip}")
        return await handler(request)

    return ip_limit


EXEMPT = {"/health", "/ready", "/metrics"}


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Verify a bearer token or the access cookie when present; handlers decide who may pass."""
    request[PRINCIPAL] = None
    operation = declared(request.match_info.handler)
    if operation is not None and operation.anonymous:  # login, ...: a stale token never refuses
        return await handler(request)
    verifier: Any = request.app.get(AUTH)
    header = request.headers.get("Authorization", "")
    cookie = request.cookies.get(ACCESS_COOKIE, "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization must be 'Bearer <token>'")
    elif cookie:
        token = cookie
        if request.method in UNSAFE_METHODS:
            origin = request.headers.get("Origin", "")
            if origin not in request.app[SETTINGS].cors_allow_origins:
                raise Forbidden("a cookie-authenticated write needs an allowed Origin")
    else:
        return await handler(request)
    if verifier is None:
        raise Unauthorized("this service does not accept tokens")
    principal = await verifier.authenticate(token.strip())
    # 401 revoked; 503 when neither Redis nor the record can tell
    await request.app[REVOCATIONS].check(principal, token.strip())
    request[PRINCIPAL] = principal
    structlog.contextvars.bind_contextvars(user_id=str(principal.user_id))
    return await handler(request)


@web.middleware
async def user_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The per-user rate limit, after auth: a bad token is a 401 before it."""
    principal = principal_of(request)
    limits = request.app.get(LIMITS)
    if principal is not None and limits is not None:
        await enforce(limits.user, f"user:{principal.user_id}")
    return await handler(request)


def chain(settings: ServiceSettings) -> list[Middleware]:
    """The middleware of every HTTP app, outermost first: the one declaration of the order
    (docs/architecture.md, "The path of a request"). Tracing is no layer at all when off."""
    return [
        *([tracing_middleware] if tracing.ENABLED else []),
        security_headers_middleware,
        request_id_middleware,
        database_scope_middleware,
        cors_middleware(settings.cors_allow_origins),
        observe_middleware(settings.service, settings.log_redact_params),
        error_middleware,
        ip_limit_middleware(settings.trusted_proxies),
        auth_middleware,
        user_limit_middleware,
        not_modified_middleware,
        audit_middleware,
    ]
