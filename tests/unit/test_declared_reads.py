"""Every operation declares exactly what its handler reads (query parameters, headers, the
body, `me` in the path), and the check catches a planted undeclared read
(tests/unit/declared_reads.py, ADR 0024). Under a second."""

from __future__ import annotations

import importlib

import pytest
from aiohttp import web
from pydantic import BaseModel

from lib.http.body import parse_body
from lib.http.openapi import operation
from lib.http.openapi_io import Header
from services.users.access import target
from tests.unit.declared_reads import operations, undeclared
from tools import swag


class Probe(BaseModel):
    wanted: str


class Other(BaseModel):
    name: str


@pytest.mark.parametrize("service", swag.DOCUMENTED)
def test_every_operation_declares_what_its_handler_reads(service: str) -> None:
    app = importlib.import_module(f"services.{service}.app").create_app()
    found = {name: undeclared(handler) for name, handler in operations(app)}
    assert found, f"{service} has no operation"
    assert {name: problems for name, problems in found.items() if problems} == {}


@operation("Planted query", tags=["t"])
async def reads_a_query_parameter(request: web.Request) -> web.Response:
    return web.Response(text=request.query.get("secret", ""))


@operation("Planted header", tags=["t"], headers=(Header("X-Declared", "declared"),))
async def reads_a_header(request: web.Request) -> web.Response:
    return web.Response(text=request.headers.get("X-Debug", "") + request.headers["X-Declared"])


@operation("Planted unread", tags=["t"], query=Probe, headers=(Header("X-Unread", "never"),))
async def reads_nothing(request: web.Request) -> web.Response:
    return web.Response()


@operation("Planted body", tags=["t"], body=Probe)
async def parses_another_body(request: web.Request) -> web.Response:
    return web.Response(text=(await parse_body(request, Other)).name)


@operation("Planted me", tags=["t"], roles=("ADMIN",))
async def takes_me_through_a_helper(request: web.Request) -> web.Response:
    return web.Response(text=str(target(request)[1]))  # services/users/access.py: `me`


@operation("Declared", tags=["t"], query=Probe, headers=(Header("X-Declared", "declared"),))
async def reads_what_it_declares(request: web.Request) -> web.Response:
    query = request.query
    return web.Response(text=query.get("wanted", "") + request.headers.get("X-Declared", ""))


def test_a_planted_undeclared_query_parameter_fails() -> None:
    assert undeclared(reads_a_query_parameter) == ["reads query parameter 'secret', not declared"]


def test_a_planted_undeclared_header_fails() -> None:
    assert undeclared(reads_a_header) == ["reads header 'x-debug', not declared"]


def test_a_declared_parameter_never_read_fails() -> None:
    assert undeclared(reads_nothing) == [
        "declares query parameter 'wanted', never read",
        "declares header 'x-unread', never read",
    ]


def test_a_body_parsed_as_another_model_fails() -> None:
    [problem] = undeclared(parses_another_body)
    assert problem == f"parses a JSON body as {Other!r}, declared {Probe!r}"


def test_me_read_by_a_called_helper_must_be_declared() -> None:
    assert undeclared(takes_me_through_a_helper) == ["`me` in the path: read True, declared False"]


def test_reads_that_are_declared_pass() -> None:
    assert undeclared(reads_what_it_declares) == []
