"""A passkey in real Chromium through NGINX (issue 65, ADR 0053): on the account page
(nginx/pages/account.html) a user signs in with the password, adds a passkey made by the
browser's own virtual authenticator (DevTools' WebAuthn domain: discoverable credential,
user verified), signs out, signs in again with the passkey alone, and confirms with it
when a sensitive action finds the sign-in too old (ADR 0055). The page is opened
at http://localhost:<gateway port> (an RP ID is a domain, never an IP address), which is
the users service's PUBLIC_BASE_URL: its origin and host are what the service checks.
Screenshots in test-artifacts/ (passkey-added.png, passkey-signed-in.png). The same page
lists where the account is signed in and ends another session (account-sessions.png), and
sets up an authenticator app, then signs in with the password and its code (ADR 0054;
totp-enrolment.png, totp-signed-in.png)."""

from __future__ import annotations

import base64
import json
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import asyncpg
import pyotp
import pytest
from webauthn.helpers import bytes_to_base64url as b64url

from tests.e2e.account_stack import PASSWORD, AccountStack, registered, running_account_stack
from tests.e2e.browser import artifact, assert_png, chromium, node, run_script
from tests.e2e.story_stack import call

HOST = "localhost"
FAILED = "Failed to load resource: the server responded with a status of "  # the console's
# the app's code for argv's secret, argv's seconds from now: what the page is given to type
CODE = "import sys, time, pyotp; print(pyotp.TOTP(sys.argv[1]).at(time.time() + int(sys.argv[2])))"
# every sign-in of argv's account older than REAUTH_MAX_AGE (the stack's: the default)
AGE = """
import asyncio, sys, asyncpg
from services.users.settings import UsersSettings
async def age(dsn, email):
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "UPDATE refresh_token_families SET authenticated_at = now() - make_interval(secs => $2)"
        " WHERE user_id = (SELECT id FROM users WHERE email = $1)",
        email, UsersSettings.model_fields["reauth_max_age"].default + 1.0)
    await conn.close()
asyncio.run(age(*sys.argv[1:]))
"""


@pytest.fixture(scope="module")
async def stack(
    migrated_db: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AccountStack]:
    node()
    chromium()
    tmp = tmp_path_factory.mktemp("passkeys_browser")
    dsns = (migrated_db("users"), migrated_db("departments"), migrated_db("points"))
    async with running_account_stack(tmp, *dsns, public_host=HOST) as running:
        yield running


async def test_a_passkey_registers_and_signs_in_in_chromium(
    stack: AccountStack, tmp_path: Path
) -> None:
    account = await registered(stack)
    user_id = uuid.UUID(account["id"])
    added, signed_in = artifact("passkey-added.png"), artifact("passkey-signed-in.png")
    spec = tmp_path / "passkeys.json"
    spec.write_text(
        json.dumps(
            {
                "url": f"http://{HOST}:{stack.gateway.port}/account",
                "email": account["email"],
                "password": PASSWORD,
                "age_command": [sys.executable, "-c", AGE, stack.users_dsn, account["email"]],
                "screenshots": {"added": str(added), "signed_in": str(signed_in)},
            }
        )
    )
    result = await run_script("passkeys.cjs", chromium(), str(spec))
    # the console's one line: the stale session's action answers 403 (ADR 0055)
    assert result["errors"] == [FAILED + "403 (Forbidden)"], result["errors"]
    steps = result["steps"]
    assert (steps["password"]["code"], steps["password"]["text"]) == (
        "SIGNED_IN", "Signed in with your password."
    )  # fmt: skip
    assert steps["added"]["code"] == "PASSKEY_ADDED", steps["added"]
    assert steps["signed_out"]["code"] == "SIGNED_OUT"
    assert result["signed_out_visible"] is True
    assert (steps["passkey"]["code"], steps["passkey"]["text"]) == (
        "SIGNED_IN", "Signed in with a passkey."
    )  # fmt: skip
    assert result["who"] == f"Signed in as {account['email']}."
    # the browser's authenticator holds one discoverable credential for this site, whose
    # user handle is the account's id; the sign-in moved its counter
    (made,) = result["credentials_after_add"]
    assert (made["resident"], made["rp_id"]) == (True, HOST)
    assert made["user_handle"].rstrip("=") in (b64url(user_id.bytes), _std(user_id.bytes))
    (used,) = result["credentials_after_sign_in"]
    assert used["sign_count"] > made["sign_count"]
    (listed,) = result["passkeys_after_sign_in"]
    assert listed.startswith("Virtual authenticator (last used ")
    # a sensitive action on the sign-in grown old: confirmed with the passkey, then done
    assert steps["stale"]["code"] == "REAUTHENTICATION_REQUIRED", steps["stale"]
    assert steps["reauth"]["code"] == "TOTP_STARTED", steps["reauth"]
    (confirmed,) = result["credentials_after_reauth"]
    assert confirmed["sign_count"] > used["sign_count"]
    assert result["api_calls"] == [
        "POST /api/users/v1/auth/login", "GET /api/users/v1/users/me",
        "GET /api/users/v1/users/me/passkeys", "GET /api/users/v1/users/me/sessions",
        "GET /api/users/v1/users/me/second-factor",
        "POST /api/users/v1/users/me/passkeys/options", "POST /api/users/v1/users/me/passkeys",
        "GET /api/users/v1/users/me/passkeys",
        "POST /api/users/v1/auth/logout",
        "POST /api/users/v1/auth/passkey/options", "POST /api/users/v1/auth/passkey/login",
        "GET /api/users/v1/users/me", "GET /api/users/v1/users/me/passkeys",
        "GET /api/users/v1/users/me/sessions", "GET /api/users/v1/users/me/second-factor",
        "POST /api/users/v1/users/me/second-factor/totp",
        "POST /api/users/v1/auth/passkey/options", "POST /api/users/v1/auth/reauth",
        "POST /api/users/v1/users/me/second-factor/totp",
    ]  # fmt: skip
    assert all(r.startswith(f"http://{HOST}:{stack.gateway.port}/") for r in result["requests"])
    assert_png(added)
    assert_png(signed_in)
    conn = await asyncpg.connect(stack.users_dsn)
    try:  # the stored counter is the authenticator's; two sessions: password, passkey
        stored = await conn.fetchval("SELECT sign_count FROM passkeys WHERE user_id = $1", user_id)
        families = await conn.fetch(
            "SELECT revoked_reason FROM refresh_token_families WHERE user_id = $1"
            " ORDER BY created_at",
            user_id,
        )
    finally:
        await conn.close()
    assert stored == confirmed["sign_count"]
    assert [f["revoked_reason"] for f in families] == ["logout", None]


async def test_the_account_page_lists_the_sessions_and_ends_another(
    stack: AccountStack, tmp_path: Path
) -> None:
    """Signed in twice (another device through the API, then the page): the page lists
    both, this one marked; ending the other leaves this one alone, and the other's refresh
    token is refused."""
    account = await registered(stack)
    async with aiohttp.ClientSession() as http:
        login = {"email": account["email"], "password": PASSWORD}
        resp, body = await call(
            http, "POST", f"{stack.api}/v1/auth/login", json=login,
            headers={"User-Agent": "Other device/1.0"},
        )  # fmt: skip
        assert resp.status == 200, body
    other = body["data"]
    shot = artifact("account-sessions.png")
    spec = tmp_path / "sessions.json"
    spec.write_text(
        json.dumps(
            {
                "url": f"http://{HOST}:{stack.gateway.port}/account",
                "email": account["email"],
                "password": PASSWORD,
                "screenshot": str(shot),
            }
        )
    )
    result = await run_script("account_sessions.cjs", chromium(), str(spec))
    assert result["errors"] == [], result["errors"]
    assert result["signed_in"]["code"] == "SIGNED_IN"
    before = result["before"]
    assert [s["current"] for s in before] == [True, False]  # the most recently used first
    assert before[0]["text"].startswith(result["user_agent"]), before[0]
    assert before[0]["text"].endswith("(this session)")
    assert before[1]["text"].startswith("Other device/1.0, "), before[1]
    assert (result["ended"]["code"], result["ended"]["text"]) == ("SESSION_ENDED", "Session ended.")
    assert [s["id"] for s in result["after"]] == [before[0]["id"]]
    assert_png(shot)
    async with aiohttp.ClientSession() as http:
        resp, body = await call(
            http, "POST", f"{stack.api}/v1/auth/refresh",
            json={"refresh_token": other["refresh_token"]},
        )  # fmt: skip
        assert resp.status == 401, body


async def test_the_account_page_sets_up_an_authenticator_app_and_signs_in_with_it(
    stack: AccountStack, tmp_path: Path
) -> None:
    """The QR code the service drew, the key beside it (the otpauth URI's), a first code
    (pyotp's) turns the app on; the ten recovery codes shown once; after signing out, the
    password asks for a code on the page and the next code signs in. The sign-in grown
    older than REAUTH_MAX_AGE, turning the app off asks to confirm (the password), then
    goes on: the password alone signs in again."""
    account = await registered(stack)
    user_id = uuid.UUID(account["id"])
    enrolment, signed_in = artifact("totp-enrolment.png"), artifact("totp-signed-in.png")
    spec = tmp_path / "totp.json"
    spec.write_text(
        json.dumps(
            {
                "url": f"http://{HOST}:{stack.gateway.port}/account",
                "email": account["email"],
                "password": PASSWORD,
                "code_command": [sys.executable, "-c", CODE],
                "age_command": [sys.executable, "-c", AGE, stack.users_dsn, account["email"]],
                "screenshots": {"enrolment": str(enrolment), "signed_in": str(signed_in)},
            }
        )
    )
    result = await run_script("totp.cjs", chromium(), str(spec))
    # the console's lines: the password login that owes a code answers 401 (ADR 0054), the
    # stale session's action 403 (ADR 0055); nothing else
    expected = [FAILED + "401 (Unauthorized)", FAILED + "403 (Forbidden)"]
    assert result["errors"] == expected, result["errors"]
    steps = result["steps"]
    assert steps["password"]["code"] == "SIGNED_IN", steps["password"]
    assert result["state_before"] == "Off: your password alone signs you in."
    assert steps["started"]["code"] == "TOTP_STARTED", steps["started"]
    uri = urlsplit(result["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert parse_qs(uri.query)["secret"] == [result["secret"]]
    assert pyotp.TOTP(result["secret"]).provisioning_uri(
        name=account["email"].lower(), issuer_name="Fixup"
    ) == result["otpauth_uri"]  # fmt: skip
    (qr,) = result["qr"]  # drawn as SVG, in the page's own document
    assert (qr["namespace"], qr["paths"]) == ("http://www.w3.org/2000/svg", 1)
    assert qr["width"] > 100, qr
    assert result["recovery_before_confirm"] == 0  # shown once it is on, not before
    assert steps["confirmed"]["code"] == "TOTP_ON", steps["confirmed"]
    codes = result["recovery_codes"]
    assert len(set(codes)) == 10, codes
    assert result["setup_visible"] is False
    on = "On: a password sign-in asks for a code (10 recovery codes left)."
    assert result["state_after"] == on
    assert steps["saved"]["code"] == "RECOVERY_CODES_HIDDEN"
    assert result["recovery_after_saved"] == 0
    assert steps["signed_out"]["code"] == "SIGNED_OUT"
    assert steps["owed"]["code"] == "SECOND_FACTOR", steps["owed"]
    assert result["code_form_visible"] is True
    assert (steps["code"]["code"], steps["code"]["text"]) == (
        "SIGNED_IN", "Signed in with your password and a code."
    )  # fmt: skip
    assert result["who"] == f"Signed in as {account['email']}."
    assert result["recovery_after_sign_in"] == 0  # never shown again
    assert result["steps"]["stale"]["code"] == "REAUTHENTICATION_REQUIRED"
    assert result["reauth_visible"] is True
    assert result["steps"]["off"]["code"] == "TOTP_OFF", result["steps"]["off"]
    assert result["reauth_visible_after"] is False
    assert result["state_off"] == "Off: your password alone signs you in."
    assert result["api_calls"] == [
        "POST /api/users/v1/auth/login", "GET /api/users/v1/users/me",
        "GET /api/users/v1/users/me/passkeys", "GET /api/users/v1/users/me/sessions",
        "GET /api/users/v1/users/me/second-factor",
        "POST /api/users/v1/users/me/second-factor/totp",
        "POST /api/users/v1/users/me/second-factor/totp/confirm",
        "GET /api/users/v1/users/me/second-factor",
        "POST /api/users/v1/auth/logout",
        "POST /api/users/v1/auth/login", "POST /api/users/v1/auth/second-factor",
        "GET /api/users/v1/users/me", "GET /api/users/v1/users/me/passkeys",
        "GET /api/users/v1/users/me/sessions", "GET /api/users/v1/users/me/second-factor",
        "DELETE /api/users/v1/users/me/second-factor", "POST /api/users/v1/auth/reauth",
        "DELETE /api/users/v1/users/me/second-factor",
        "GET /api/users/v1/users/me/second-factor",
    ]  # fmt: skip
    assert_png(enrolment)
    assert_png(signed_in)
    async with aiohttp.ClientSession() as http:  # turned off: the password alone again
        login = {"email": account["email"], "password": PASSWORD}
        resp, body = await call(http, "POST", f"{stack.api}/v1/auth/login", json=login)
        assert resp.status == 200, body
    conn = await asyncpg.connect(stack.users_dsn)
    try:  # three sessions: the password's (signed out), password and code, the password
        families = await conn.fetch(
            "SELECT revoked_reason FROM refresh_token_families WHERE user_id = $1"
            " ORDER BY created_at",
            user_id,
        )
    finally:
        await conn.close()
    assert [f["revoked_reason"] for f in families] == ["logout", None, None]


def _std(raw: bytes) -> str:
    """DevTools gives the user handle in standard base64."""
    return base64.b64encode(raw).decode().rstrip("=")
