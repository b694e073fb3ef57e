"""The second factor at the API (ADR 0054) on real PostgreSQL: enrol (secret, otpauth URI,
QR code, recovery codes), confirm, a password login then answering 401
SECOND_FACTOR_REQUIRED with a challenge that a code completes; a code replayed within its
window, a wrong one, a used recovery code, an expired or used challenge, a second
enrolment: each a problem+json that changes nothing; the secret sealed at rest; a role of
SECOND_FACTOR_ROLES enrolling right after its password."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest

from lib.auth.principal import Role
from lib.crypto import FieldCipher, sealed_kid
from lib.http.keys import SETTINGS
from lib.keyring import Keyring, symmetric
from services.users.app import create_app
from services.users.auth_kit import new_secret
from services.users.db.auth import add_email_token
from services.users.db.models import EmailTokenPurpose
from services.users.totp import recovery_hash
from tests import pg
from tests.integration.users_support import (
    PASSWORD,
    age_sign_in,
    auth,
    make_user,
    reauthenticate,
    reauthentication_required,
    users_settings,
)
from tests.problems import problem
from tools.secrets.sealed import counts, reencrypt


def app_settings(dsn: str, **extra: Any) -> Any:
    return users_settings(dsn, login_rate=1e6, login_burst=10**6, **extra)


@pytest.fixture
async def client(aiohttp_client: Any, users_dsn: str) -> Any:
    return await aiohttp_client(create_app(app_settings(users_dsn)))


async def email_of(dsn: str, user_id: uuid.UUID) -> str:
    email: str = await pg.fetchval(dsn, "SELECT email FROM users WHERE id = $1", user_id)
    return email


CHALLENGE = ("challenge", "step", "expires_in")  # what the 401 carries to the next step


def code_at(secret: str, steps: int = 0) -> str:
    """The code of the time step `steps` away from now."""
    return pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30 * steps))


async def enrolled(client: Any, user_id: uuid.UUID) -> dict[str, Any]:
    """A confirmed enrolment (its first code: the step before now, so now is still free)."""
    headers = auth(user_id)
    resp = await client.post("/v1/users/me/second-factor/totp", headers=headers)
    assert resp.status == 201, await resp.text()
    enrolment: dict[str, Any] = (await resp.json())["data"]
    confirm = {"code": code_at(enrolment["secret"], -1)}
    resp = await client.post(
        "/v1/users/me/second-factor/totp/confirm", json=confirm, headers=headers
    )
    assert resp.status == 204, await resp.text()
    return enrolment


async def password_login(client: Any, email: str) -> dict[str, Any]:
    resp = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    body = await problem(resp, 401, "SECOND_FACTOR_REQUIRED", *CHALLENGE)
    assert resp.headers["Cache-Control"] == "no-store"
    assert "access_token" not in body
    assert "fixup_access" not in resp.cookies
    return body


async def test_enrol_confirm_and_sign_in_with_a_code(client: Any, users_dsn: str) -> None:
    user_id = await make_user(users_dsn)
    email = await email_of(users_dsn, user_id)
    headers = auth(user_id)
    resp = await client.post("/v1/users/me/second-factor/totp", headers=headers)
    assert resp.status == 201, await resp.text()
    enrolment = (await resp.json())["data"]
    assert enrolment["otpauth_uri"] == pyotp.TOTP(enrolment["secret"]).provisioning_uri(
        name=email, issuer_name="Fixup"
    )
    assert enrolment["qr_svg"].startswith("<svg")
    assert len(set(enrolment["recovery_codes"])) == 10
    # not yet confirmed: the password alone still signs in
    resp = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    # sealed at rest with the encryption keyring, bound to the user
    sealed = bytes(
        await pg.fetchval(
            users_dsn, "SELECT secret_encrypted FROM totp_factors WHERE user_id = $1", user_id
        )
    )
    assert enrolment["secret"].encode() not in sealed
    key = users_settings(users_dsn).encryption_keyring()
    assert key is not None
    assert FieldCipher(key).decrypt(sealed, associated=user_id.bytes) == enrolment["secret"]

    wrong = {"code": "000000" if code_at(enrolment["secret"]) != "000000" else "111111"}
    resp = await client.post("/v1/users/me/second-factor/totp/confirm", json=wrong, headers=headers)
    await problem(resp, 400, "CODE_INVALID")
    confirm = {"code": code_at(enrolment["secret"], -1)}
    resp = await client.post(
        "/v1/users/me/second-factor/totp/confirm", json=confirm, headers=headers
    )
    assert resp.status == 204, await resp.text()
    state = await client.get("/v1/users/me/second-factor", headers=headers)
    assert (await state.json())["data"] == {
        "totp": True,
        "recovery_codes_left": 10,
        "required": False,
    }

    challenge = (await password_login(client, email))["challenge"]
    body = {"challenge": challenge, "code": code_at(enrolment["secret"])}
    resp = await client.post("/v1/auth/second-factor", json=body)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["data"]["token_type"] == "Bearer"
    assert {"fixup_access", "fixup_refresh"} <= set(resp.cookies)
    # the challenge is used; the same code with a new challenge is a replay within its window
    await problem(await client.post("/v1/auth/second-factor", json=body), 401, "UNAUTHORIZED")
    again = {"challenge": (await password_login(client, email))["challenge"], "code": body["code"]}
    await problem(await client.post("/v1/auth/second-factor", json=again), 400, "CODE_INVALID")
    # an older step than the last accepted: refused too
    again["code"] = code_at(enrolment["secret"], -1)
    await problem(await client.post("/v1/auth/second-factor", json=again), 400, "CODE_INVALID")


async def test_recovery_codes_work_once_each(client: Any, users_dsn: str) -> None:
    user_id = await make_user(users_dsn)
    email = await email_of(users_dsn, user_id)
    enrolment = await enrolled(client, user_id)
    # ASVS V6.5.2/V6.5.4: 24 base32 characters, 120 bits (a plain hash is enough from 112)
    assert {len(c.replace("-", "")) * 5 for c in enrolment["recovery_codes"]} == {120}
    code = enrolment["recovery_codes"][3]
    body = {
        "challenge": (await password_login(client, email))["challenge"],
        "recovery_code": code.upper(),
    }
    resp = await client.post("/v1/auth/second-factor", json=body)
    assert resp.status == 200, await resp.text()
    body = {"challenge": (await password_login(client, email))["challenge"], "recovery_code": code}
    await problem(await client.post("/v1/auth/second-factor", json=body), 400, "CODE_INVALID")
    state = await client.get("/v1/users/me/second-factor", headers=auth(user_id))
    assert (await state.json())["data"]["recovery_codes_left"] == 9


async def test_five_wrong_codes_end_the_challenge(client: Any, users_dsn: str) -> None:
    user_id = await make_user(users_dsn)
    enrolment = await enrolled(client, user_id)
    challenge = (await password_login(client, await email_of(users_dsn, user_id)))["challenge"]
    good = code_at(enrolment["secret"])
    wrong = "000000" if good != "000000" else "111111"
    for _ in range(5):
        resp = await client.post(
            "/v1/auth/second-factor", json={"challenge": challenge, "code": wrong}
        )
        await problem(resp, 400, "CODE_INVALID")
    resp = await client.post("/v1/auth/second-factor", json={"challenge": challenge, "code": good})
    await problem(resp, 401, "UNAUTHORIZED")


async def test_an_expired_challenge_is_refused(client: Any, users_dsn: str) -> None:
    user_id = await make_user(users_dsn)
    enrolment = await enrolled(client, user_id)
    challenge = (await password_login(client, await email_of(users_dsn, user_id)))["challenge"]
    await pg.fetchval(
        users_dsn,
        "UPDATE second_factor_challenges SET created_at = now() - interval '1 hour',"
        " expires_at = now() - interval '1 second' WHERE user_id = $1",
        user_id,
    )
    body = {"challenge": challenge, "code": code_at(enrolment["secret"])}
    await problem(await client.post("/v1/auth/second-factor", json=body), 401, "UNAUTHORIZED")
    sessions = "SELECT count(*) FROM refresh_token_families WHERE user_id = $1"
    assert await pg.fetchval(users_dsn, sessions, user_id) == 1  # make_user's only


async def test_a_second_enrolment_is_409_and_removal_frees_the_password(
    client: Any, users_dsn: str
) -> None:
    user_id = await make_user(users_dsn)
    headers = auth(user_id)
    first = await enrolled(client, user_id)
    resp = await client.post("/v1/users/me/second-factor/totp", headers=headers)
    await problem(resp, 409, "CONFLICT")
    stored = "SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL"
    assert await pg.fetchval(users_dsn, stored, user_id) == len(first["recovery_codes"])
    resp = await client.post(
        "/v1/users/me/second-factor/totp/confirm", json={"code": "123456"}, headers=headers
    )
    await problem(resp, 409, "CONFLICT")
    assert (await client.delete("/v1/users/me/second-factor", headers=headers)).status == 204
    await problem(
        await client.delete("/v1/users/me/second-factor", headers=headers), 404, "NOT_FOUND"
    )
    assert await pg.fetchval(users_dsn, stored, user_id) == 0
    email = await email_of(users_dsn, user_id)
    resp = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"challenge": "x" * 43},
        {"challenge": "x" * 43, "code": "12345"},
        {"challenge": "x" * 43, "code": "123456", "recovery_code": "aaaa-bbbb-cccc-dddd-eeee"},
        {"challenge": "x" * 43, "recovery_code": "not a code"},
        {"challenge": "x" * 43, "code": "123456", "extra": 1},
    ],
)
async def test_malformed_second_factor_bodies_are_400(client: Any, body: dict[str, Any]) -> None:
    await problem(await client.post("/v1/auth/second-factor", json=body), 400, "VALIDATION_ERROR")


async def test_a_required_role_enrols_right_after_its_password(
    aiohttp_client: Any, users_dsn: str
) -> None:
    settings = app_settings(
        users_dsn,
        second_factor_roles=[Role.PROVIDER, Role.ADMIN],
        second_factor_challenge_ttl=60,
        totp_issuer="Fixup Market",
    )
    client = await aiohttp_client(create_app(settings))
    user_id = await make_user(users_dsn, Role.PROVIDER)
    email = await email_of(users_dsn, user_id)
    owed = await password_login(client, email)
    assert (owed["step"], owed["expires_in"]) == ("enrol", 60)
    # a code cannot complete it before an enrolment, nor a recovery code
    body = {"challenge": owed["challenge"], "code": "123456"}
    await problem(await client.post("/v1/auth/second-factor", json=body), 400, "CODE_INVALID")
    resp = await client.post("/v1/auth/second-factor/enrol", json={"challenge": owed["challenge"]})
    assert resp.status == 201, await resp.text()
    enrolment = (await resp.json())["data"]
    assert enrolment["otpauth_uri"].endswith("&issuer=Fixup%20Market")
    body = {"challenge": owed["challenge"], "recovery_code": enrolment["recovery_codes"][0]}
    await problem(await client.post("/v1/auth/second-factor", json=body), 400, "CODE_INVALID")
    body = {"challenge": owed["challenge"], "code": code_at(enrolment["secret"])}
    resp = await client.post("/v1/auth/second-factor", json=body)
    assert resp.status == 200, await resp.text()
    state = await client.get("/v1/users/me/second-factor", headers=auth(user_id, Role.PROVIDER))
    assert (await state.json())["data"] == {
        "totp": True,
        "recovery_codes_left": 10,
        "required": True,
    }
    # a verify challenge is no enrolment's
    verify = await password_login(client, email)
    assert verify["step"] == "totp"
    resp = await client.post(
        "/v1/auth/second-factor/enrol", json={"challenge": verify["challenge"]}
    )
    await problem(resp, 401, "UNAUTHORIZED")
    # a CUSTOMER is not asked
    customer = await make_user(users_dsn)
    resp = await client.post(
        "/v1/auth/login", json={"email": await email_of(users_dsn, customer), "password": PASSWORD}
    )
    assert resp.status == 200, await resp.text()


async def test_a_key_rotation_reseals_the_totp_secrets(
    aiohttp_client: Any, migrated_db: Callable[[str], str]
) -> None:
    """`make rotate secret=encryption step=reencrypt` moves TOTP secrets to the current key
    as it does personal id numbers (tools/secrets/sealed.py); the codes still work."""
    dsn = migrated_db("users")  # its own database: the job reads the whole table
    client = await aiohttp_client(create_app(app_settings(dsn)))
    user_id = await make_user(dsn)
    enrolment = await enrolled(client, user_id)
    legacy = users_settings(dsn).encryption_keyring()
    assert legacy is not None
    ring = Keyring((replace(legacy.current, state="retired"), symmetric("k1", b"n" * 32)))
    assert counts(dsn) == {"k0": 1}
    assert reencrypt(dsn, FieldCipher(ring), batch=10, max_batches=None) == 1
    assert counts(dsn) == {"k1": 1}
    column = "SELECT secret_encrypted FROM totp_factors WHERE user_id = $1"
    sealed = bytes(await pg.fetchval(dsn, column, user_id))
    assert sealed_kid(sealed) == "k1"
    assert FieldCipher(ring).decrypt(sealed, associated=user_id.bytes) == enrolment["secret"]


async def test_the_second_factors_changes_need_a_recent_sign_in(
    client: Any, users_dsn: str
) -> None:
    """Enrolling, confirming and removing, each refused (403, nothing changed) to a session
    signed in longer ago than REAUTH_MAX_AGE, each let through by POST /v1/auth/reauth; a
    bad body is still a 400 first."""
    user_id = await make_user(users_dsn)
    headers = auth(user_id)
    stale = client.app[SETTINGS].reauth_max_age + 1
    factor = "SELECT confirmed_at IS NOT NULL FROM totp_factors WHERE user_id = $1"

    async def refused(method: str, path: str, body: Any = None) -> None:
        await age_sign_in(users_dsn, user_id, stale)
        resp = await client.request(method, path, json=body, headers=headers)
        assert reauthentication_required(resp.status, await resp.json()), (path, resp.status)
        await reauthenticate(client, headers)

    await refused("POST", "/v1/users/me/second-factor/totp")
    assert await pg.fetchval(users_dsn, factor, user_id) is None
    resp = await client.post("/v1/users/me/second-factor/totp", headers=headers)
    assert resp.status == 201, await resp.text()
    confirm = {"code": code_at((await resp.json())["data"]["secret"], -1)}

    await age_sign_in(users_dsn, user_id, stale)
    resp = await client.post(
        "/v1/users/me/second-factor/totp/confirm", json={"code": "x"}, headers=headers
    )
    await problem(resp, 400, "VALIDATION_ERROR")
    await reauthenticate(client, headers)
    await refused("POST", "/v1/users/me/second-factor/totp/confirm", confirm)
    assert await pg.fetchval(users_dsn, factor, user_id) is False
    resp = await client.post(
        "/v1/users/me/second-factor/totp/confirm", json=confirm, headers=headers
    )
    assert resp.status == 204, await resp.text()

    await refused("DELETE", "/v1/users/me/second-factor")
    assert await pg.fetchval(users_dsn, factor, user_id) is True
    resp = await client.delete("/v1/users/me/second-factor", headers=headers)
    assert resp.status == 204, await resp.text()
    assert await pg.fetchval(users_dsn, factor, user_id) is None


async def test_a_password_reset_does_not_bypass_the_second_factor(
    client: Any, users_dsn: str
) -> None:
    """ASVS V6.4.3: the reset link sets a new password; signing in with it still asks for a
    code (the factor stays), and only a code completes it."""
    user_id = await make_user(users_dsn)
    email = await email_of(users_dsn, user_id)
    enrolment = await enrolled(client, user_id)
    token, token_hash = new_secret()  # what the reset mail carries, made as the service does
    async with pg.connected(users_dsn) as conn:
        await add_email_token(
            conn,
            user_id=user_id,
            purpose=EmailTokenPurpose.PASSWORD_RESET,
            token_hash=token_hash,
            ttl_seconds=600,
        )
    new = {"token": token, "new_password": "lantern quarry violet"}
    resp = await client.post("/v1/auth/password-reset/confirm", json=new)
    assert resp.status == 204, await resp.text()
    resp = await client.post(
        "/v1/auth/login", json={"email": email, "password": new["new_password"]}
    )
    challenge = (await problem(resp, 401, "SECOND_FACTOR_REQUIRED", *CHALLENGE))["challenge"]
    assert "access_token" not in await resp.text()
    body = {"challenge": challenge, "code": code_at(enrolment["secret"])}
    assert (await client.post("/v1/auth/second-factor", json=body)).status == 200


async def test_secrets_are_random_stored_hashed_and_codes_live_one_step(
    client: Any, users_dsn: str
) -> None:
    """ASVS V6.5.2-V6.5.5: a TOTP seed of 160 bits and recovery codes of 120 bits, each
    new (the CSPRNG: `secrets`), the codes stored as their SHA-256 only; a code is of a 30 s
    step, accepted one step either side for clock drift and no further."""
    user_id = await make_user(users_dsn)
    enrolment = await enrolled(client, user_id)
    assert len(enrolment["secret"]) * 5 == 160
    assert "period" not in enrolment["otpauth_uri"]  # the default: 30 s
    other = await enrolled(client, await make_user(users_dsn))
    codes = enrolment["recovery_codes"] + other["recovery_codes"]
    assert len(set(codes)) == 20
    assert other["secret"] != enrolment["secret"]
    stored = await pg.fetch(
        users_dsn, "SELECT code_hash FROM recovery_codes WHERE user_id = $1", user_id
    )
    hashes = {bytes(row["code_hash"]) for row in stored}  # the table keeps no code itself
    assert hashes == {recovery_hash(user_id, c) for c in enrolment["recovery_codes"]}

    email = await email_of(users_dsn, user_id)
    for steps in (3, -3):  # further than one step (a rollover meanwhile leaves 2): refused
        body = {"challenge": (await password_login(client, email))["challenge"],
                "code": code_at(enrolment["secret"], steps)}  # fmt: skip
        await problem(await client.post("/v1/auth/second-factor", json=body), 400, "CODE_INVALID")
    body = {"challenge": (await password_login(client, email))["challenge"],
            "code": code_at(enrolment["secret"], 1)}  # fmt: skip
    assert (await client.post("/v1/auth/second-factor", json=body)).status == 200


async def test_a_code_re_authenticates_once(client: Any, users_dsn: str) -> None:
    """POST /v1/auth/reauth with a code of the app makes a stale session recent (ADR 0055);
    the same code again, an older one, a wrong one, or a code from an account without the
    app: 400 CODE_INVALID, the session still stale."""
    user_id = await make_user(users_dsn)
    headers = auth(user_id)
    secret = (await enrolled(client, user_id))["secret"]
    stale = client.app[SETTINGS].reauth_max_age + 1
    enrol = "/v1/users/me/second-factor/totp"  # a sensitive action: 409 once recent

    async def still_stale() -> None:
        resp = await client.post(enrol, headers=headers)
        assert reauthentication_required(resp.status, await resp.json()), resp.status

    await age_sign_in(users_dsn, user_id, stale)
    await still_stale()
    code = code_at(secret)
    resp = await client.post("/v1/auth/reauth", json={"code": code}, headers=headers)
    assert resp.status == 204, await resp.text()
    await problem(await client.post(enrol, headers=headers), 409, "CONFLICT")

    await age_sign_in(users_dsn, user_id, stale)
    wrong = "000000" if code_at(secret, 1) != "000000" else "111111"
    for refused in (code, code_at(secret, -1), wrong):
        resp = await client.post("/v1/auth/reauth", json={"code": refused}, headers=headers)
        await problem(resp, 400, "CODE_INVALID")
        await still_stale()
    resp = await client.post("/v1/auth/reauth", json={"code": code_at(secret, 1)}, headers=headers)
    assert resp.status == 204, await resp.text()

    other = await make_user(users_dsn)  # no app enrolled: no code proves it
    await age_sign_in(users_dsn, other, stale)
    resp = await client.post("/v1/auth/reauth", json={"code": code}, headers=auth(other))
    await problem(resp, 400, "CODE_INVALID")
    resp = await client.post(enrol, headers=auth(other))
    assert reauthentication_required(resp.status, await resp.json())


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"code": "12345"},
        {"code": None},
        {"password": PASSWORD, "code": "123456"},
        {"code": "123456", "credential": {}},
        {"credential": "not an object"},
        {"code": "123456", "extra": 1},
    ],
)
async def test_malformed_reauth_bodies_are_400(
    client: Any, users_dsn: str, body: dict[str, Any]
) -> None:
    headers = auth(await make_user(users_dsn))
    resp = await client.post("/v1/auth/reauth", json=body, headers=headers)
    await problem(resp, 400, "VALIDATION_ERROR")
