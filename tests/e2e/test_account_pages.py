"""A new user's first minutes in real Chromium through NGINX (issue 28): the links of the
verification and reset mails open the account pages (nginx/pages/), which confirm the
address or change the password through the API; no token or password of the run is in any
log, and the address bar never shows a token once the page has loaded. Swagger UI: an
ADMIN signs in, authorizes with the access token and creates a department.

Mail goes into a local SMTP sink; screenshots of every state are kept in test-artifacts/.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.e2e.account_stack import (
    PASSWORD,
    AccountStack,
    registered,
    running_account_stack,
)
from tests.e2e.browser import artifact, assert_png, chromium, node, run_script
from tests.e2e.story_stack import call
from tests.integration.smtp_support import mail_to, token_in

LINK = re.compile(r"https?://\S+")
API_REFUSAL = re.compile(r"^Failed to load resource: the server responded with a status of 40[09] ")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)


@pytest.fixture(scope="module")
async def stack(
    migrated_db: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AccountStack]:
    node()
    chromium()
    tmp = tmp_path_factory.mktemp("account_pages")
    dsns = (migrated_db("users"), migrated_db("departments"), migrated_db("points"))
    async with running_account_stack(tmp, *dsns) as running:
        yield running


def link_in(mail: Any) -> str:
    body = mail.get_payload(decode=True).decode()
    found = LINK.search(body)
    assert found, body
    return found.group(0)


async def open_page(
    stack: AccountStack, url: str, shot: str, tmp: Any, **scenario: Any
) -> dict[str, Any]:
    """The page at `url` on a phone-sized Chromium; `scenario` as account_pages.cjs reads it."""
    screenshot = artifact(f"account-{shot}.png")
    spec = tmp / f"{shot}.json"
    spec.write_text(json.dumps({"url": url, "screenshot": str(screenshot), **scenario}))
    result = await run_script("account_pages.cjs", chromium(), str(spec))
    # Chromium reports the API's refusals (400, 409) on the console: those are expected
    errors = [e for e in result["errors"] if not API_REFUSAL.match(e)]
    assert errors == [], errors
    assert_png(screenshot)
    assert result["headers"]["content-security-policy"] == CSP
    assert result["headers"]["referrer-policy"] == "no-referrer"
    # every request stayed on the gateway and none carried a token in its URL
    assert all(r.startswith(stack.gateway.url) for r in result["requests"]), result["requests"]
    assert all("token" not in r for r in result["requests"][1:]), result["requests"]
    path = url.split(stack.gateway.url, 1)[1].split("?")[0].split("#")[0]
    for href in (
        result["loaded_href"],
        result["final_href"],
        *(s["href"] for s in result["steps"]),
    ):
        assert href == f"{stack.gateway.url}{path}", href  # no token in the address bar
    return result


def assert_in_no_log(stack: AccountStack, secrets: list[str], seen: list[str]) -> None:
    """None of `secrets` in any log of the stack, which does hold each of `seen` (so the
    search ran over the run's real lines, not over empty files)."""
    texts = stack.log_texts()
    joined = "\n".join(texts.values())
    assert all(s in joined for s in seen), [s for s in seen if s not in joined]
    leaked = [(path, s[:8]) for path, text in texts.items() for s in secrets if s in text]
    assert leaked == []


async def login(
    http: aiohttp.ClientSession, stack: AccountStack, email: str, password: str
) -> tuple[int, Any]:
    credentials = {"email": email, "password": password}
    resp, body = await call(http, "POST", f"{stack.api}/v1/auth/login", json=credentials)
    return resp.status, body


async def test_verification_link_opens_the_page_and_verifies(
    stack: AccountStack, tmp_path: Any
) -> None:
    async with aiohttp.ClientSession() as http:
        account = await registered(stack)
        first_link = link_in(await mail_to(stack.sink, account["email"]))
        assert first_link.startswith(f"{stack.gateway.url}/verify-email#token=")
        token = first_link.split("#token=", 1)[1]

        # a tampered token: "not valid", and the page's button mails a new link
        tampered = first_link[:-1] + ("A" if first_link[-1] != "A" else "B")
        bad = await open_page(
            stack, tampered, "verify-invalid", tmp_path, renew_email=account["email"]
        )
        assert (bad["steps"][0]["code"], bad["steps"][0]["renew_visible"]) == ("LINK_INVALID", True)
        assert "not valid" in bad["steps"][0]["text"]
        assert bad["renewed"]["state"] == "ok"
        assert bad["api_calls"] == [
            "POST /api/users/v1/auth/verify", "POST /api/users/v1/auth/resend-verification"
        ]  # fmt: skip
        second_link = link_in(await mail_to(stack.sink, account["email"]))
        assert second_link != first_link

        ok = await open_page(stack, second_link, "verify-ok", tmp_path)
        assert ok["steps"][0]["state"] == "ok"
        assert ok["steps"][0]["text"] == "Email verified — you can sign in now."
        assert ok["api_calls"] == ["POST /api/users/v1/auth/verify"]
        status, body = await login(http, stack, account["email"], PASSWORD)
        assert status == 200, body
        assert body["data"]["access_token"]

        # the same link again; and the first one, which the second use ended too
        for link, shot in ((second_link, "verify-used"), (first_link, "verify-used-first")):
            used = await open_page(stack, link, shot, tmp_path)
            assert (used["steps"][0]["state"], used["steps"][0]["code"]) == ("error", "LINK_USED")
            assert "already used" in used["steps"][0]["text"]

    tokens = [token, second_link.split("#token=", 1)[1], tampered.split("#token=", 1)[1]]
    secrets = [*tokens, body["data"]["access_token"], body["data"]["refresh_token"], PASSWORD]
    assert_in_no_log(stack, secrets, ["/verify-email", "/v1/auth/verify"])


async def test_an_old_query_link_still_works_and_its_token_is_logged_redacted(
    stack: AccountStack, tmp_path: Any
) -> None:
    account = await registered(stack)
    token = token_in(await mail_to(stack.sink, account["email"]))
    old_link = f"{stack.gateway.url}/verify-email?token={token}"  # what mails said before
    ok = await open_page(stack, old_link, "verify-old-link", tmp_path)
    assert (ok["steps"][0]["state"], ok["steps"][0]["code"]) == ("ok", "VERIFIED")
    lines = [json.loads(x) for x in stack.gateway.access_log.read_text().splitlines()]
    assert {"path": "/verify-email", "query": "token=[REDACTED]"}.items() <= next(
        line for line in lines if line["path"] == "/verify-email" and line["query"]
    ).items()
    assert_in_no_log(stack, [token], ["token=[REDACTED]"])


async def test_reset_link_opens_a_form_that_changes_the_password(
    stack: AccountStack, tmp_path: Any
) -> None:
    new_password = f"new pass {uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession() as http:
        account = await registered(stack)
        verify_token = token_in(await mail_to(stack.sink, account["email"]))
        resp, _ = await call(
            http, "POST", f"{stack.api}/v1/auth/verify", json={"token": verify_token}
        )
        assert resp.status == 204
        sessions = [(await login(http, stack, account["email"], PASSWORD))[1]["data"]
                    for _ in range(2)]  # fmt: skip
        resp, _ = await call(
            http, "POST", f"{stack.api}/v1/auth/password-reset", json={"email": account["email"]}
        )
        assert resp.status == 204
        link = link_in(await mail_to(stack.sink, account["email"]))
        assert link.startswith(f"{stack.gateway.url}/reset-password#token=")

        form = await open_page(
            stack, link, "reset-changed", tmp_path,
            passwords=[
                ["short", "short", str(artifact("account-reset-too-short.png"))],
                [new_password, new_password + "x", str(artifact("account-reset-mismatch.png"))],
                [new_password, new_password, None],
            ],
        )  # fmt: skip
        short, mismatch, changed = form["steps"]
        assert short["requests_sent"] == 0
        assert "at least 8" in short["password_error"]
        assert (short["password_invalid"], short["focused"]) == ("true", "password")
        assert mismatch["requests_sent"] == 0
        assert mismatch["confirm_error"] == "The two passwords are not the same."
        assert (mismatch["password_error"], mismatch["focused"]) == ("", "confirm")
        assert (changed["requests_sent"], changed["state"]) == (1, "ok")
        assert changed["text"].startswith("Password changed — every other session was signed out.")
        assert form["api_calls"] == ["POST /api/users/v1/auth/password-reset/confirm"]

        assert (await login(http, stack, account["email"], PASSWORD))[0] == 401
        for session in sessions:
            resp, body = await call(
                http, "POST", f"{stack.api}/v1/auth/refresh",
                json={"refresh_token": session["refresh_token"]},
            )  # fmt: skip
            assert resp.status == 401, body
        status, fresh = await login(http, stack, account["email"], new_password)
        assert status == 200, fresh

        again = await open_page(
            stack, link, "reset-used", tmp_path, passwords=[[new_password, new_password, None]]
        )
        step = again["steps"][0]
        assert (step["state"], step["code"], step["renew_visible"]) == ("error", "LINK_USED", True)
        assert "already used" in step["text"]

    secrets = [link.split("#token=", 1)[1], verify_token, PASSWORD, new_password]
    for pair in (*sessions, fresh["data"]):
        secrets += [pair["access_token"], pair["refresh_token"]]
    assert_in_no_log(stack, secrets, ["/reset-password", "/v1/auth/password-reset/confirm"])


async def test_swagger_ui_signs_in_authorizes_and_creates_a_department(
    stack: AccountStack,
) -> None:
    account = await registered(stack)
    conn = await asyncpg.connect(stack.users_dsn)
    try:  # an ADMIN is made by another ADMIN; here by hand
        await conn.execute(
            "UPDATE users SET role = 'ADMIN', verified = true WHERE email = $1", account["email"]
        )
    finally:
        await conn.close()
    name = f"Browser Dept {uuid.uuid4().hex[:8]}"
    screenshot = artifact("swagger-ui-authorized.png")
    result = await run_script(
        "swagger_authorize.cjs", stack.gateway.url, str(screenshot), chromium(),
        account["email"], PASSWORD, name,
    )  # fmt: skip
    assert result["login_status"] == "200"
    assert result["create_status"] == "201", result["create_body"]
    assert result["authorization"] == f"Bearer {result['access_token']}"
    assert json.loads(result["create_body"])["data"]["name"] == name
    assert all(r.startswith(stack.gateway.url) for r in result["requests"]), result["requests"]
    assert_png(screenshot, 20_000)
    lines = [json.loads(x) for x in stack.gateway.access_log.read_text().splitlines()]
    assert any(
        (line["method"], line["path"], line["status"], line["service"])
        == ("POST", "/api/departments/v1/departments", 201, "departments")
        for line in lines
    )
    assert_in_no_log(stack, [result["access_token"], PASSWORD], ["/api/departments/v1/departments"])
