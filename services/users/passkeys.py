"""Passkeys (docs/api.md, "users"; ADR 0053): WebAuthn credentials registered by a signed-in
user, and a passwordless sign-in with a discoverable one, verified by py_webauthn.

A ceremony is two calls: options (a new challenge, stored as its SHA-256 with its
ceremony, its user for a registration, and its expiry), then the browser's answer. The
answer's clientDataJSON names its challenge; the row is deleted by that one use whatever
the outcome, so a replayed response finds nothing. py_webauthn then checks the challenge,
the origin (WEBAUTHN_ORIGINS, else PUBLIC_BASE_URL's), the RP ID hash, user presence and
verification, the signature and the counter; the counter is written only forward.
A passkey sign-in starts the same refresh family and token pair as a password login.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from lib.errors import BadRequest, Conflict, NotFound, Unauthorized
from lib.http.access import EVERY_ROLE, SELF
from lib.http.body import parse_body
from lib.http.guards import authenticated, path_uuid
from lib.http.jsonio import data
from lib.http.keys import CLIENT_IP, DB
from lib.http.openapi import operation
from lib.resilience.ratelimit import enforce
from services.users.access import own_account
from services.users.auth_kit import AUTH_KIT, AUTH_TAGS, users_settings
from services.users.auth_schemas import TokenPair
from services.users.db import auth as auth_q
from services.users.db import passkeys as q
from services.users.db.models import WebauthnCeremony
from services.users.facts import LOGINS
from services.users.passkey_schemas import (
    CeremonyOut,
    PasskeyIn,
    PasskeyList,
    PasskeyOut,
    PasskeySignInIn,
)
from services.users.recent_auth import check_recent_auth, requires_recent_auth
from services.users.session_list import SESSION_HEADERS, user_agent
from services.users.sessions import start_session
from services.users.settings import UsersSettings

routes = web.RouteTableDef()
TAGS = ["passkeys"]
REQUIRED = UserVerificationRequirement.REQUIRED


class PasskeyRefused(BadRequest):
    code, title = "PASSKEY_REFUSED", "Passkey not accepted"


def relying_party(settings: UsersSettings) -> tuple[str, list[str]]:
    """The RP ID and the origins an answer may come from: the settings, else the gateway's
    public origin (PUBLIC_BASE_URL) and its host."""
    public = urlsplit(settings.public_base_url)
    origins = settings.webauthn_origins or [f"{public.scheme}://{public.netloc}"]
    return settings.webauthn_rp_id or (public.hostname or ""), origins


async def new_challenge(
    request: web.Request, options: Any, ceremony: WebauthnCeremony, user_id: uuid.UUID | None
) -> web.Response:
    """Store the challenge of `options` (its digest) and answer the options."""
    settings = users_settings(request)
    async with request.app[DB].acquire() as conn:
        await q.drop_expired_challenges(conn)
        await q.add_challenge(
            conn,
            challenge_hash=hashlib.sha256(options.challenge).digest(),
            ceremony=ceremony,
            user_id=user_id,
            ttl_seconds=settings.webauthn_challenge_ttl,
        )
    response = data({"public_key": options_to_json_dict(options)})
    response.headers["Cache-Control"] = "no-store"
    return response


async def take_challenge(
    request: web.Request, client_data_json: bytes, ceremony: WebauthnCeremony
) -> tuple[bytes, uuid.UUID | None] | None:
    """The challenge the answer names and its user, used up now; None: unknown, used,
    expired, or of another ceremony."""
    challenge = parse_client_data_json(client_data_json).challenge
    async with request.app[DB].acquire() as conn:
        row = await q.take_challenge(
            conn, challenge_hash=hashlib.sha256(challenge).digest(), ceremony=ceremony
        )
    if row is None or not row.live:
        return None
    return challenge, row.user_id


@routes.post("/v1/users/me/passkeys/options")
@operation(
    "Start registering a passkey",
    tags=TAGS,
    response=CeremonyOut,
    roles=EVERY_ROLE,
    owner=SELF,
    errors=(403,),
    description="Options for navigator.credentials.create(): a discoverable credential "
    "(resident key) with user verification, none of the user's passkeys again. The "
    "challenge works once, for WEBAUTHN_CHALLENGE_TTL seconds (120). Needs a recent "
    "sign-in (403 REAUTHENTICATION_REQUIRED: POST /v1/auth/reauth); the registration "
    "then answers this challenge.",
)
@requires_recent_auth
async def registration_options(request: web.Request) -> web.Response:
    principal = authenticated(request)
    settings = users_settings(request)
    rp_id, _ = relying_party(settings)
    async with request.app[DB].acquire() as conn:
        user = await own_account(conn, principal)
        known = await q.credential_ids_of(conn, user_id=principal.user_id)
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=settings.webauthn_rp_name,
        user_name=user.email,
        user_id=user.id.bytes,  # the user handle: no personal data in it
        user_display_name=f"{user.first_name} {user.last_name}",
        timeout=settings.webauthn_challenge_ttl * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=REQUIRED
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in known],
    )
    return await new_challenge(request, options, WebauthnCeremony.REGISTER, user.id)


@routes.post("/v1/users/me/passkeys")
@operation(
    "Register a passkey",
    tags=TAGS,
    status=201,
    response=PasskeyOut,
    body=PasskeyIn,
    roles=EVERY_ROLE,
    owner=SELF,
    errors=(400, 409),
    description="The browser's answer to the options, checked (challenge, origin, RP ID, "
    "user presence and verification, attestation format). Problem codes: PASSKEY_REFUSED "
    "(400: the challenge unknown, used or expired, or the answer not valid); 409: this "
    "credential is registered already.",
)
async def register_passkey(request: web.Request) -> web.Response:
    principal = authenticated(request)
    body = await parse_body(request, PasskeyIn)
    rp_id, origins = relying_party(users_settings(request))
    try:
        credential = parse_registration_credential_json(body.credential)
        taken = await take_challenge(
            request, credential.response.client_data_json, WebauthnCeremony.REGISTER
        )
        if taken is None or taken[1] != principal.user_id:
            raise PasskeyRefused("this registration's challenge is unknown, used or expired")
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=taken[0],
            expected_rp_id=rp_id,
            expected_origin=origins,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError) as exc:
        raise PasskeyRefused(f"the passkey was not accepted: {exc}") from None
    async with request.app[DB].acquire() as conn:
        row = await q.add_passkey(
            conn,
            user_id=principal.user_id,
            credential_id=verified.credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            name=body.name,
        )
    if row is None:
        raise Conflict("this passkey is registered already")
    return data(row, status=201)


@routes.get("/v1/users/me/passkeys")
@operation(
    "My passkeys",
    tags=TAGS,
    response=PasskeyList,
    roles=EVERY_ROLE,
    owner=SELF,
    description="The user's passkeys, oldest first (never their keys).",
)
async def list_passkeys(request: web.Request) -> web.Response:
    principal = authenticated(request)
    async with request.app[DB].acquire() as conn:
        rows = await q.passkeys_of(conn, user_id=principal.user_id)
    return data(rows)


@routes.delete(r"/v1/users/me/passkeys/{id}")
@operation(
    "Remove a passkey",
    tags=TAGS,
    status=204,
    roles=EVERY_ROLE,
    owner=SELF,
    errors=(400, 403, 404),
    description="It signs in no more. Another user's passkey: 404, as an unknown one. "
    "Needs a recent sign-in (403 REAUTHENTICATION_REQUIRED: POST /v1/auth/reauth).",
)
async def remove_passkey(request: web.Request) -> web.Response:
    passkey_id = path_uuid(request)  # a bad id: 400 before all else
    principal = await check_recent_auth(request)
    async with request.app[DB].acquire() as conn:
        removed = await q.delete_passkey(conn, id=passkey_id, user_id=principal.user_id)
    if not removed:
        raise NotFound("no such passkey")
    return web.Response(status=204)


@routes.post("/v1/auth/passkey/options")
@operation(
    "Start signing in with a passkey",
    tags=AUTH_TAGS,
    anonymous=True,
    response=CeremonyOut,
    description="Options for navigator.credentials.get() with no allowed credentials: the "
    "browser offers the passkeys it holds for this site (discoverable credentials), user "
    "verification required. Not counted against the login limit (the sign-in is).",
)
async def sign_in_options(request: web.Request) -> web.Response:
    settings = users_settings(request)
    options = generate_authentication_options(
        rp_id=relying_party(settings)[0],
        timeout=settings.webauthn_challenge_ttl * 1000,
        user_verification=REQUIRED,
    )
    return await new_challenge(request, options, WebauthnCeremony.SIGN_IN, None)


@routes.post("/v1/auth/passkey/login")
@operation(
    "Sign in with a passkey",
    tags=AUTH_TAGS,
    anonymous=True,
    response=TokenPair,
    body=PasskeySignInIn,
    headers=SESSION_HEADERS,
    errors=(401, 429),
    description="The browser's assertion for the options' challenge: the same token pair "
    "and cookies as POST /v1/auth/login, a session (refresh family) of its own. 401 for "
    "every refusal alike: the challenge unknown, used or expired (a replayed assertion), "
    "another origin or RP ID, no user verification, an unknown or removed passkey, a bad "
    "signature, a signature counter that did not move forward (a cloned authenticator).",
)
async def sign_in(request: web.Request) -> web.Response:
    user_agent(request)  # a bad header: 400 before all else
    await enforce(request.app[AUTH_KIT].login_limit, f"ip:{request[CLIENT_IP]}")
    body = await parse_body(request, PasskeySignInIn)
    service = users_settings(request).service
    refused = Unauthorized("the passkey was not accepted")
    try:
        user = await verified_passkey_user(request, body.credential)
    except (WebAuthnException, ValueError, Unauthorized):
        LOGINS.count(service, outcome="failed")
        raise refused from None
    return await start_session(request, user)


async def verified_passkey_user(
    request: web.Request, assertion: dict[str, Any]
) -> auth_q.LoginCandidateRow:
    """The account the assertion (for a challenge of POST /v1/auth/passkey/options) signs
    in, its passkey's counter moved forward; the sign-in's and a re-authentication's check.
    Raises Unauthorized, WebAuthnException or ValueError when it is not accepted."""
    rp_id, origins = relying_party(users_settings(request))
    credential = parse_authentication_credential_json(assertion)
    taken = await take_challenge(
        request, credential.response.client_data_json, WebauthnCeremony.SIGN_IN
    )
    if taken is None:
        raise Unauthorized("challenge unknown, used or expired")
    async with request.app[DB].acquire() as conn:
        passkey = await q.passkey_for_sign_in(conn, credential_id=credential.raw_id)
    if passkey is None or credential.response.user_handle != passkey.user_id.bytes:
        raise Unauthorized("unknown passkey")
    verified = verify_authentication_response(
        credential=credential,
        expected_challenge=taken[0],
        expected_rp_id=rp_id,
        expected_origin=origins,
        credential_public_key=passkey.public_key,
        credential_current_sign_count=passkey.sign_count,
        require_user_verification=True,
    )
    async with request.app[DB].acquire() as conn:
        if not await q.use_passkey(conn, id=passkey.id, sign_count=verified.new_sign_count):
            raise Unauthorized("the signature counter did not move forward")
    return auth_q.LoginCandidateRow(
        id=passkey.user_id,
        email=passkey.email,
        password_hash=passkey.password_hash,
        role=passkey.role,
        verified=passkey.verified,
    )
