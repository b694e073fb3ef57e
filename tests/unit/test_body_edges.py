"""Body parsers' edges that aiohttp itself refuses (issue 54): a Content-Encoding the body
does not follow is a 400 problem, never a 500; JSON that is not UTF-8 is a 400 (nesting past
the parser's depth: tests/unit/test_body_json.py); a compressed body that inflates past the
limit is a 413."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from aiohttp import web
from pydantic import BaseModel

from lib.config import ServiceSettings
from lib.http.app import create_app
from lib.http.body import MAX_BODY, parse_body
from lib.http.openapi import operation


class Named(BaseModel):
    name: str


def routes() -> web.RouteTableDef:
    table = web.RouteTableDef()

    @table.post("/v1/named")
    @operation("Named", tags=["t"], body=Named)
    async def named(request: web.Request) -> web.Response:
        return web.json_response({"name": (await parse_body(request, Named)).name})

    return table


JSON = {"Content-Type": "application/json"}
CASES: dict[str, tuple[bytes, dict[str, str], int, str]] = {
    "gzip that is not gzip": (
        b"not gzip",
        {**JSON, "Content-Encoding": "gzip"},
        400,
        "the request body could not be decoded (its Content-Encoding)",
    ),
    "gzip past the limit once inflated": (
        gzip.compress(b'{"name":"' + b"a" * (MAX_BODY + 1) + b'"}'),
        {**JSON, "Content-Encoding": "gzip"},
        413,
        f"the body may be at most {MAX_BODY} bytes",
    ),
    "not UTF-8": (b'{"name":"\xff"}', JSON, 400, "the body is not valid JSON"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
async def test_a_body_aiohttp_or_the_parser_refuses_is_a_4xx_problem(
    aiohttp_client: Any, case: str
) -> None:
    body, headers, status, detail = CASES[case]
    client = await aiohttp_client(
        create_app(ServiceSettings(service="t", database_url=""), routes=routes(), title="t")
    )
    resp = await client.post("/v1/named", data=body, headers=headers)
    assert (resp.status, resp.content_type) == (status, "application/problem+json")
    assert (await resp.json())["detail"] == detail


async def test_a_gzip_body_that_is_gzip_is_read(aiohttp_client: Any) -> None:
    client = await aiohttp_client(
        create_app(ServiceSettings(service="t", database_url=""), routes=routes(), title="t")
    )
    resp = await client.post(
        "/v1/named",
        data=gzip.compress(b'{"name":"a"}'),
        headers={**JSON, "Content-Encoding": "gzip"},
    )
    assert (resp.status, await resp.json()) == (200, {"name": "a"})
