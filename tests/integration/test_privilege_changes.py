"""Nobody but an ADMIN raises a privilege: every field only an ADMIN may set (`role`,
`verified`: the fields UserPatch marks "ADMIN only", which must be ADMIN_ONLY), with
every value that would change it, sent by every other role (MODERATOR included),
verified or not, on `me` and on another user, alone or next to a field the caller may
set: refused (404 for a verified caller who may not see the target, else 403), nothing
written (the row read back), and no token issued afterwards (refresh, login) carries a
higher role.
Registration likewise: only CUSTOMER or PROVIDER, never verified by the body."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lib.auth.principal import Role
from lib.auth.tokens import TokenVerifier
from services.users.app import create_app as users_app
from services.users.profile_schemas import ADMIN_ONLY, UserPatch
from tests import pg
from tests.integration.auth_support import KEYS
from tests.integration.users_support import PASSWORD, auth, make_user, users_settings

VERIFIER = TokenVerifier(KEYS[1])
CALLERS = [
    (role, verified) for role in Role if role is not Role.ADMIN for verified in (True, False)
]


@pytest.fixture
async def users(aiohttp_client: Any, users_dsn: str, tmp_path: Any) -> Any:
    settings = users_settings(
        users_dsn, storage_dir=str(tmp_path), login_rate=1e6, login_burst=10**6,
        register_rate=1e6, register_burst=10**6,
    )  # fmt: skip
    return await aiohttp_client(users_app(settings))


def admin_only_fields() -> set[str]:
    return {
        name
        for name, info in UserPatch.model_fields.items()
        if "ADMIN only" in (info.description or "")
    }


def values_of(field: str) -> list[Any]:
    """Every value of `field` (even one equal to the row's: the field itself is refused)."""
    if field == "role":
        return [str(r) for r in Role]
    assert field == "verified", f"no values known for the ADMIN-only field {field}"
    return [True, False]


async def row_of(dsn: str, user_id: uuid.UUID) -> dict[str, Any]:
    row = await pg.fetchrow(dsn, "SELECT * FROM users WHERE id = $1", user_id)
    assert row is not None
    return dict(row)


async def email_of(dsn: str, user_id: uuid.UUID) -> str:
    return str((await row_of(dsn, user_id))["email"])


def test_the_admin_only_fields_are_the_ones_the_schema_marks() -> None:
    assert admin_only_fields() == set(ADMIN_ONLY) == {"role", "verified"}


@pytest.mark.parametrize(("role", "verified"), CALLERS, ids=lambda v: str(v))
async def test_no_other_role_sets_an_admin_only_field(
    users: Any, users_dsn: str, role: Role, verified: bool
) -> None:
    caller = await make_user(users_dsn, role)
    other = await make_user(users_dsn, Role.CUSTOMER)
    headers = auth(caller, role, verified)
    before = {uid: await row_of(users_dsn, uid) for uid in (caller, other)}
    wrong = []
    for field in sorted(ADMIN_ONLY):
        for value in values_of(field):
            for target, target_id in (("me", caller), (str(other), other)):
                for body in ({field: value}, {"first_name": "Mallory", field: value}):
                    version = before[target_id]["version"]
                    resp = await users.patch(
                        f"/v1/users/{target}", json=body,
                        headers={**headers, "If-Match": f'"{version}"'},
                    )  # fmt: skip
                    # 404 only for a verified caller who may not see the target (an
                    # unverified one is refused by the operation's `verified` first)
                    hidden = target != "me" and role is not Role.MODERATOR and verified
                    if resp.status != (404 if hidden else 403):
                        wrong.append((target, body, resp.status, await resp.text()))
    assert wrong == []
    for uid, row in before.items():  # nothing written, not even the allowed first_name
        assert await row_of(users_dsn, uid) == row
    # no later token carries another role: a login, then its refresh
    login = await users.post(
        "/v1/auth/login", json={"email": await email_of(users_dsn, caller), "password": PASSWORD}
    )
    assert login.status == 200, await login.text()
    pair = (await login.json())["data"]
    assert VERIFIER.verify(pair["access_token"]).role is role
    refreshed = await users.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status == 200, await refreshed.text()
    assert VERIFIER.verify((await refreshed.json())["data"]["access_token"]).role is role


async def test_the_admin_control_an_admin_may_and_later_tokens_follow(
    users: Any, users_dsn: str
) -> None:
    """The same request by an ADMIN works (the refusals above are not a malformed body),
    and the promoted user's next refresh carries the role the row now has."""
    admin = auth(await make_user(users_dsn, Role.ADMIN), Role.ADMIN)
    user = await make_user(users_dsn, Role.CUSTOMER)
    login = await users.post(
        "/v1/auth/login", json={"email": await email_of(users_dsn, user), "password": PASSWORD}
    )
    refresh_token = (await login.json())["data"]["refresh_token"]
    version = (await row_of(users_dsn, user))["version"]
    resp = await users.patch(
        f"/v1/users/{user}", json={"role": "PROVIDER", "verified": False},
        headers={**admin, "If-Match": f'"{version}"'},
    )  # fmt: skip
    assert resp.status == 200, await resp.text()
    row = await row_of(users_dsn, user)
    assert (row["role"], row["verified"]) == ("PROVIDER", False)
    refreshed = await users.post("/v1/auth/refresh", json={"refresh_token": refresh_token})
    principal = VERIFIER.verify((await refreshed.json())["data"]["access_token"])
    assert (principal.role, principal.verified) == (Role.PROVIDER, False)


@pytest.mark.parametrize(
    ("extra", "status"),
    [({"role": "MODERATOR"}, 403), ({"role": "ADMIN"}, 403), ({"verified": True}, 403)],
)
async def test_registration_grants_no_privilege(
    users: Any, users_dsn: str, extra: dict[str, Any], status: int
) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    body = {"email": email, "password": "a long enough secret 1", "first_name": "Ada",
            "last_name": "Lovelace", "phone_number": "+1 555 0100", "role": "CUSTOMER",
            **extra}  # fmt: skip
    resp = await users.post("/v1/auth/register", json=body)
    assert resp.status == status, await resp.text()
    assert await pg.fetchval(users_dsn, "SELECT count(*) FROM users WHERE email = $1", email) == 0
