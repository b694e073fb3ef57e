"""lib/auth/tokens' time rules on the verifier's own clock (ADR 0010: users verifies on the
database's clock, every service forgives TOKEN_CLOCK_LEEWAY): `iat` and `nbf` may be ahead
by the leeway and no more, `exp` is past at `now - leeway`; an `nbf` that is not a number
is invalid; without `nbf`, `iat` rules. Every instant is relative to one read of the
clock in the test, and the verifier is given that instant as its clock."""

from __future__ import annotations

import time
from typing import Any

import pytest

from lib.auth.tokens import TokenVerifier, generate_keypair
from lib.errors import Unauthorized
from tests.unit.test_auth_tokens import USER_ID, Keys, signed

LEEWAY = 5


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(*generate_keypair())


def verify(keys: Keys, now: int, **claims: Any) -> None:
    TokenVerifier(keys.public_pem, LEEWAY, now=lambda: now).verify(signed(keys, **claims))


def refused(keys: Keys, now: int, **claims: Any) -> str:
    with pytest.raises(Unauthorized) as caught:
        verify(keys, now, **claims)
    return str(caught.value.detail)


def test_iat_and_nbf_may_be_ahead_by_the_leeway_and_no_more(keys: Keys) -> None:
    now = int(time.time())
    verify(keys, now, iat=now + LEEWAY, exp=now + 900)
    assert refused(keys, now, iat=now + LEEWAY + 1, exp=now + 900) == "invalid token"
    verify(keys, now, iat=now, nbf=now + LEEWAY, exp=now + 900)
    assert refused(keys, now, iat=now, nbf=now + LEEWAY + 1, exp=now + 900) == "invalid token"
    # a past iat does not excuse an nbf ahead, nor a past nbf an iat ahead
    assert refused(keys, now, iat=now - 60, nbf=now + 60, exp=now + 900) == "invalid token"
    assert refused(keys, now, iat=now + 60, nbf=now - 60, exp=now + 900) == "invalid token"


@pytest.mark.parametrize("nbf", ["1700000000", True, [1]])
def test_an_nbf_that_is_not_a_number_is_invalid(keys: Keys, nbf: object) -> None:
    now = int(time.time())
    assert refused(keys, now, iat=now, nbf=nbf, exp=now + 900) == "invalid token"


def test_exp_is_past_at_now_minus_the_leeway(keys: Keys) -> None:
    now = int(time.time())
    principal = TokenVerifier(keys.public_pem, LEEWAY, now=lambda: now).verify(
        signed(keys, iat=now - 900, exp=now - LEEWAY + 1)
    )
    assert principal.user_id == USER_ID
    assert refused(keys, now, iat=now - 900, exp=now - LEEWAY) == "token expired"


def test_the_clock_is_the_verifiers_not_the_hosts(keys: Keys) -> None:
    """A verifier whose clock is 90 s behind this host's (users on the database's clock)
    refuses a token issued now as issued in the future, and one 90 s ahead finds a token
    expiring within 90 s already expired."""
    host = int(time.time())
    assert refused(keys, host - 90, iat=host, exp=host + 900) == "invalid token"
    assert refused(keys, host + 90, iat=host - 800, exp=host + 60) == "token expired"
    verify(keys, host - 90, iat=host - 90, exp=host + 900)
