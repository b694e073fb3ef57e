"""services/chat/ws.presented_token: the token a socket was opened with, which the sweep
asks users' record with while Redis cannot tell (ADR 0028): the subprotocol's, else the
Authorization header's, else the access cookie's, as socket_principal reads them."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from services.chat.ws import presented_token


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Sec-WebSocket-Protocol": "fixup.bearer, a.b.c"}, "a.b.c"),
        ({"Sec-WebSocket-Protocol": " a.b.c ,fixup.bearer"}, "a.b.c"),
        ({"Sec-WebSocket-Protocol": "fixup.bearer"}, ""),  # refused at the handshake anyway
        ({"Sec-WebSocket-Protocol": "fixup.bearer, a.b.c", "Authorization": "Bearer x.y.z"},
         "a.b.c"),
        ({"Sec-WebSocket-Protocol": "other", "Authorization": "Bearer  x.y.z "}, "x.y.z"),
        ({"Authorization": "Bearer x.y.z", "Cookie": "fixup_access=c.o.k"}, "x.y.z"),
        ({"Cookie": "fixup_access= c.o.k"}, "c.o.k"),
        ({"Cookie": "other=1"}, ""),
        ({}, ""),
    ],
)  # fmt: skip
def test_the_token_the_socket_was_opened_with(headers: dict[str, str], expected: str) -> None:
    request = make_mocked_request("GET", "/v1/conversations/x/ws", headers=headers)
    assert presented_token(request) == expected
