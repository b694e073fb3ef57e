"""A key users retires leaves every verifier of its JWK Set (lib/http/jwks_client.py) once
the verifier's refresh window has passed: each fetched set replaces the cached one, so a
token signed with the retired key is refused while the keys still served verify. The set
is served by a real aiohttp server on loopback; the window is the configured
`JWKS_MIN_REFRESH_INTERVAL`, passed on the fetcher's monotonic clock, never slept."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lib.auth.jwks import JWKS_MEDIA_TYPE, JWKS_PATH, jwks_document, key_id
from lib.auth.pem import generate_keypair, load_public_key
from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner, TokenVerifier
from lib.config import ServiceSettings
from lib.errors import Unauthorized
from lib.http.jwks_client import JwksKeys
from tools.local.ports import free_port

# what `make test svc=` selects it for (tests/selection.py): none, `users` is only the
# name of the JWK Set's server here
EXERCISES = ()
SETTINGS = ServiceSettings(service="t", database_url="")


@dataclass
class Users:
    """What users serves at its JWKS path, and how many times it was asked."""

    served: list[Ed25519PublicKey] = field(default_factory=list)
    fetches: int = 0

    async def jwks(self, _request: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response(jwks_document(self.served), content_type=JWKS_MEDIA_TYPE)


@pytest.fixture
async def users() -> AsyncIterator[tuple[Users, str]]:
    state = Users()
    app = web.Application()
    app.router.add_get(JWKS_PATH, state.jwks)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    yield state, str(server.make_url(JWKS_PATH))
    await server.close()


def signer() -> tuple[TokenSigner, Ed25519PublicKey]:
    private, public = generate_keypair()
    return TokenSigner(private, ttl_seconds=300), load_public_key(public)


def token(by: TokenSigner) -> str:
    return by.issue(uuid.uuid4(), Role.ADMIN, verified=True)[0]


async def test_a_retired_key_is_refused_once_the_window_has_passed(
    users: tuple[Users, str],
) -> None:
    state, url = users
    (a, a_public), (b, b_public), (c, c_public) = signer(), signer(), signer()
    state.served = [a_public, b_public]
    window = SETTINGS.jwks_min_refresh_interval
    clock = [1000.0]
    keys = JwksKeys(url, service="t", timeout=SETTINGS.jwks_timeout, min_refresh=window,
                    monotonic=lambda: clock[0])  # fmt: skip
    verifier = TokenVerifier(keys)
    try:
        assert await keys.fetch()  # the first fetch, as at start-up
        token_a, token_b, token_c = token(a), token(b), token(c)
        for valid in (token_a, token_b):
            assert (await verifier.authenticate(valid)).role == Role.ADMIN

        state.served = [b_public, c_public]  # users promotes C and retires A
        clock[0] += window / 2  # within the window: the cached set stands, unasked
        with pytest.raises(Unauthorized):
            await verifier.authenticate(token_c)
        assert (await verifier.authenticate(token_a)).role == Role.ADMIN
        assert state.fetches == 1

        clock[0] += window / 2  # the window has passed: C's token makes it ask again
        assert (await verifier.authenticate(token_c)).role == Role.ADMIN
        assert state.fetches == 2
        assert keys.key(key_id(a_public)) is None
        with pytest.raises(Unauthorized) as refused:
            await verifier.authenticate(token_a)
        assert refused.value.status == 401
        assert (await verifier.authenticate(token_b)).role == Role.ADMIN
        assert state.fetches == 2  # A's refusal did not ask again within the new window
    finally:
        await keys.close()
