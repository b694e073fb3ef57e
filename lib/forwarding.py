"""What a request hands on to the calls it makes: its id and the caller's credentials.

Below both lib.http (whose first middleware sets the id) and lib.clients (which forwards
it), so neither package imports the other's internals for it (ADR 0026: lib in layers).
"""

from __future__ import annotations

from aiohttp import web

ACCESS_COOKIE = "fixup_access"  # the access token of a browser's session (services/users)
REQUEST_ID = web.RequestKey("request_id", str)
FORWARDED = ("Authorization",)


def request_id(request: web.Request) -> str:
    value: str = request.get(REQUEST_ID, "")
    return value


def forwarded_headers(caller: web.Request | None) -> dict[str, str]:
    """The caller's credentials (its bearer token, or the access cookie's token as a
    bearer token) and request id, for the downstream call."""
    if caller is None:
        return {}
    headers = {name: caller.headers[name] for name in FORWARDED if name in caller.headers}
    cookie = caller.cookies.get(ACCESS_COOKIE, "")
    if "Authorization" not in headers and cookie:  # a browser's caller: the same token
        headers["Authorization"] = f"Bearer {cookie.strip()}"
    rid = request_id(caller)
    if rid:
        headers["X-Request-ID"] = rid
    return headers
