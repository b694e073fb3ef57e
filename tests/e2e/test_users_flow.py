"""The users flow, black box, through real NGINX: register -> mail -> verify -> login ->
/me -> refresh, with users, departments and points as real processes, mail through a
local SMTP sink, and the keys `make keys` writes (as `make run` passes them)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from lib.crypto import FieldCipher
from tests import pg
from tests.e2e.account_stack import (
    PASSWORD,
    AccountStack,
    new_account,
    running_account_stack,
)
from tests.e2e.story_stack import call
from tests.integration.smtp_support import mail_to, token_in

PERSONAL_ID = f"PID-{uuid.uuid4().hex[:10]}-E2E"  # a value no other text of the run holds


@pytest.fixture(scope="module")
async def stack(
    migrated_db: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AccountStack]:
    tmp = tmp_path_factory.mktemp("users_flow")
    dsns = (migrated_db("users"), migrated_db("departments"), migrated_db("points"))
    async with running_account_stack(tmp, *dsns) as running:
        yield running


async def test_register_mail_verify_login_me_refresh_through_nginx(stack: AccountStack) -> None:
    account = new_account()
    async with aiohttp.ClientSession() as http:
        resp, body = await call(http, "POST", f"{stack.api}/v1/auth/register", json=account)
        assert resp.status == 201, body
        user = body["data"]
        assert (user["email"], user["role"], user["verified"]) == (
            account["email"], "CUSTOMER", False)  # fmt: skip
        assert "password" not in str(body)

        mail = await mail_to(stack.sink, account["email"])
        assert mail["Subject"] == "Confirm your Fixup email address"
        assert f"{stack.gateway.url}/verify-email#token=" in str(mail.get_payload())
        token = token_in(mail)
        resp, body = await call(http, "POST", f"{stack.api}/v1/auth/verify", json={"token": token})
        assert resp.status == 204, body

        credentials = {"email": account["email"], "password": PASSWORD}
        resp, body = await call(http, "POST", f"{stack.api}/v1/auth/login", json=credentials)
        assert resp.status == 200, body
        first = body["data"]
        assert (first["token_type"], first["expires_in"]) == ("Bearer", 900)
        assert resp.headers["Cache-Control"] == "no-store"
        cookies = resp.cookies
        assert cookies["fixup_access"].value == first["access_token"]
        assert cookies["fixup_refresh"].value == first["refresh_token"]
        assert cookies["fixup_access"]["path"] == "/"
        assert cookies["fixup_refresh"]["path"] == "/api/users/v1/auth"
        for name in ("fixup_access", "fixup_refresh"):
            assert cookies[name]["httponly"]
            assert cookies[name]["secure"]
            assert cookies[name]["samesite"] == "Strict"

        me_url = f"{stack.api}/v1/users/me"
        bearer = {"Authorization": f"Bearer {first['access_token']}"}
        resp, body = await call(http, "GET", me_url, headers=bearer)
        assert resp.status == 200, body
        me = body["data"]
        assert (me["id"], me["email"], me["verified"]) == (user["id"], account["email"], True)
        assert me["points"] == 0  # points answered over gRPC (None would mean degraded)

        # a change checked with the departments service over HTTP
        patch_headers = {**bearer, "If-Match": resp.headers["ETag"]}
        patch = {"department_id": stack.department_id}
        resp, body = await call(http, "PATCH", me_url, json=patch, headers=patch_headers)
        assert resp.status == 200, body
        assert body["data"]["department_id"] == stack.department_id

        refresh_url = f"{stack.api}/v1/auth/refresh"
        resp, body = await call(
            http, "POST", refresh_url, json={"refresh_token": first["refresh_token"]}
        )
        assert resp.status == 200, body
        second = body["data"]
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        rotated = {"Authorization": f"Bearer {second['access_token']}"}
        resp, body = await call(http, "GET", me_url, headers=rotated)
        assert resp.status == 200, body
        assert body["data"]["department_id"] == stack.department_id

        # the old token replayed: 401, and its whole family is revoked
        replay = {"refresh_token": first["refresh_token"]}
        resp, body = await call(http, "POST", refresh_url, json=replay)
        assert resp.status == 401, body
        newest = {"refresh_token": second["refresh_token"]}
        resp, body = await call(http, "POST", refresh_url, json=newest)
        assert resp.status == 401, body

    reasons = await pg.fetch(
        stack.users_dsn,
        "SELECT revoked_reason FROM refresh_token_families WHERE user_id = $1",
        uuid.UUID(user["id"]),
    )
    assert [r["revoked_reason"] for r in reasons] == ["refresh token reused"]


async def test_provider_personal_id_number_is_in_no_response_and_no_log(
    stack: AccountStack,
) -> None:
    account = new_account("PROVIDER", personal_id_number=PERSONAL_ID)
    answers: list[str] = []
    async with aiohttp.ClientSession() as http:
        resp, body = await call(http, "POST", f"{stack.api}/v1/auth/register", json=account)
        assert resp.status == 201, body  # 503 would mean no ENCRYPTION_KEY (make keys)
        answers.append(str(body))
        user_id = body["data"]["id"]
        mail = await mail_to(stack.sink, account["email"])  # the relay is done with it
        token = token_in(mail)
        resp, body = await call(http, "POST", f"{stack.api}/v1/auth/verify", json={"token": token})
        assert resp.status == 204, body
        credentials = {"email": account["email"], "password": PASSWORD}
        resp, body = await call(http, "POST", f"{stack.api}/v1/auth/login", json=credentials)
        assert resp.status == 200, body
        bearer = {"Authorization": f"Bearer {body['data']['access_token']}"}
        for path in (f"/v1/users/{user_id}", "/v1/users/me", f"/v1/providers/{user_id}"):
            resp, body = await call(http, "GET", f"{stack.api}{path}", headers=bearer)
            assert resp.status == 200, (path, body)
            answers.append(str(body))

    assert all(PERSONAL_ID not in answer for answer in answers)
    texts = stack.log_texts()
    assert any(user_id in text for text in texts.values())  # the logs do name the account
    leaked = [path for path, text in texts.items() if PERSONAL_ID in text]
    assert leaked == []
    row = await pg.fetchrow(
        stack.users_dsn,
        "SELECT personal_id_encrypted, personal_id_last4 FROM provider_details WHERE user_id = $1",
        uuid.UUID(user_id),
    )
    assert row is not None
    assert PERSONAL_ID.encode() not in row["personal_id_encrypted"]
    assert row["personal_id_last4"] == PERSONAL_ID[-4:]
    # sealed under the key `make keys` wrote, bound to this account
    cipher = FieldCipher(stack.encryption_key_file.read_text().strip())
    sealed = row["personal_id_encrypted"]
    assert cipher.decrypt(sealed, associated=uuid.UUID(user_id).bytes) == PERSONAL_ID
