"""Keys by id (ADR 0032): thumbprints, JWKs and JWK Sets (RFC 7517/7638/8037), the key
directory's states, the verifier's pick by `kid`, and tools/rotate_keys' steps and
refusals. Times are relative to one read of the clock in each test."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from pathlib import Path

import jwt
import pytest
import structlog

from lib.auth.jwks import (
    MAX_JWKS_KEYS,
    b64url,
    b64url_decode,
    is_key_id,
    jwk,
    jwks_document,
    key_id,
    parse_jwk,
    parse_jwks,
    raw_public,
    thumbprint,
)
from lib.auth.keydir import MANIFEST, KeyDirectory, private_name, read_key_set
from lib.auth.keydir import KeySet as KeySetOf
from lib.auth.keysources import DirectoryKeys, DirectorySigningKeys, StaticKeys
from lib.auth.pem import generate_keypair, load_private_key, load_public_key
from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner, TokenVerifier, UnknownKey, signed_header
from lib.errors import ServiceUnavailable, Unauthorized
from services.users.auth_kit import signing_keys
from services.users.settings import UsersSettings
from tools import keys as keys_tool
from tools import rotate_keys
from tools.locks import file_lock

# RFC 8037 Appendix A.2 (the public key) and A.3 (its thumbprint)
RFC_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC_KID = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
TIMING = rotate_keys.Timing(publish_wait=65.0, window=910.0)


def public_of(private_pem: str) -> str:
    return jwk(load_private_key(private_pem).public_key())["x"]


def test_the_thumbprint_is_rfc_8037s() -> None:
    assert thumbprint(RFC_X) == RFC_KID
    parsed = parse_jwk({"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "kid": RFC_KID})
    assert parsed is not None
    assert parsed[0] == RFC_KID
    assert b64url(raw_public(parsed[1])) == RFC_X


def test_a_jwk_set_round_trips_each_key_once() -> None:
    keys = [load_public_key(generate_keypair()[1]) for _ in range(3)]
    document = jwks_document([*keys, keys[0]])
    assert [entry["kid"] for entry in document["keys"]] == [key_id(k) for k in keys]
    assert all(
        entry.keys() == {"kty", "crv", "x", "kid", "use", "alg"}
        and (entry["kty"], entry["crv"], entry["use"], entry["alg"])
        == ("OKP", "Ed25519", "sig", "EdDSA")
        for entry in document["keys"]
    )
    parsed = parse_jwks(json.loads(json.dumps(document)))
    assert set(parsed) == {key_id(k) for k in keys}


@pytest.mark.parametrize(
    "change",
    [
        {"kty": "RSA"},
        {"crv": "X25519"},
        {"use": "enc"},
        {"alg": "HS256"},
        {"kid": RFC_KID[:-1] + "A"},  # not the key's thumbprint
        {"kid": "../../etc/passwd"},
        {"x": "not base64url!"},
        {"x": "c2hvcnQ"},  # b"short": not 32 bytes
        {"d": RFC_X},  # a private key in a public set
    ],
)
def test_a_jwk_that_is_not_an_ed25519_signing_key_of_its_kid_is_skipped(
    change: dict[str, str],
) -> None:
    entry = {"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "kid": RFC_KID} | change
    assert parse_jwk(entry) is None
    assert parse_jwks({"keys": [entry, "junk", 7]}) == {}


@pytest.mark.parametrize("document", [[], {"keys": "x"}, {"nokeys": []}, {"keys": [{}] * 65}])
def test_what_is_not_a_jwk_set_is_an_error(document: object) -> None:
    with pytest.raises(ValueError, match="JWK Set"):
        parse_jwks(document)


@pytest.mark.parametrize(
    "kid",
    [None, 7, ["a"], {"a": 1}, "", "../" * 15, "https://evil.test/jwks.json",
     RFC_KID + "\r\nX-Evil: 1", RFC_KID[:-1], RFC_KID + "A", "k" * 10_000,
     RFC_KID.replace("_", "/")],
)  # fmt: skip
def test_a_kid_of_any_other_shape_is_not_a_key_id(kid: object) -> None:
    assert not is_key_id(kid)


def test_a_thumbprint_is_a_key_id() -> None:
    assert is_key_id(RFC_KID)


# --- the verifier picks by kid ------------------------------------------------------


def token_with(private_pem: str, **header: object) -> str:
    """Good claims signed by the key, the header's fields changed (None: left out), by hand:
    PyJWT would refuse to write a kid that is not a string."""
    now = time.time()
    claims = {"iss": "fixup-users", "aud": "fixup", "sub": str(uuid.uuid4()), "role": "ADMIN",
              "iat": now, "exp": int(now) + 60, "jti": uuid.uuid4().hex}  # fmt: skip
    fields = {"alg": "EdDSA", **signed_header(private_pem), **header}
    fields = {name: value for name, value in fields.items() if value is not None}
    signing_input = f"{b64url(json.dumps(fields).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = load_private_key(private_pem).sign(signing_input.encode())
    return f"{signing_input}.{b64url(signature)}"


def test_the_verifier_uses_the_key_the_kid_names() -> None:
    pairs = [generate_keypair() for _ in range(2)]
    verifier = TokenVerifier(StaticKeys(load_public_key(p) for _, p in pairs))
    for private, _ in pairs:
        assert verifier.verify(token_with(private)).role == Role.ADMIN
    # the other key's kid over this key's signature: the named key does not verify it
    wrong = token_with(pairs[0][0], kid=key_id(load_public_key(pairs[1][1])))
    with pytest.raises(Unauthorized, match="invalid token"):
        verifier.verify(wrong)


@pytest.mark.parametrize(
    "kid", [None, 7, "../jwt_private.pem", "https://evil.test/jwks.json", "k" * 3000, RFC_KID]
)
async def test_no_kid_a_bad_kid_or_an_unknown_one_is_401(kid: object) -> None:
    private, public = generate_keypair()
    verifier = TokenVerifier(public)
    value = token_with(private, kid=kid)
    with pytest.raises(Unauthorized, match="invalid token") as caught:
        await verifier.authenticate(value)
    assert caught.value.status == 401


class NoKeysYet:
    """A key source that has never reached users (a JwksKeys before its first fetch)."""

    def key(self, kid: str) -> None:
        return None

    async def refresh(self) -> bool:
        return False

    def published(self) -> list[object]:
        return []


async def test_no_key_ever_received_is_503_not_a_logout() -> None:
    private, _ = generate_keypair()
    verifier = TokenVerifier(NoKeysYet())  # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailable):
        await verifier.authenticate(token_with(private))
    with pytest.raises(UnknownKey):
        verifier.verify(token_with(private))


# --- the key directory and its rotation ---------------------------------------------


def published_kids(directory: Path, now: float) -> set[str]:
    keys = DirectoryKeys(
        KeyDirectory(directory, private=False, reload_interval=0.0),
        window=TIMING.window,
        min_refresh=0.0,
        now=lambda: now,
    )
    return {key_id(k) for k in keys.published()}


def test_a_rotation_stages_promotes_and_drops_in_order(tmp_path: Path) -> None:
    directory, now = tmp_path / "jwt", time.time()
    rotate_keys.init(directory, now)
    first = read_key_set(directory, private=True).signing()
    assert first is not None
    assert first.private is not None
    assert (directory / private_name(first.kid)).stat().st_mode & 0o077 == 0

    with pytest.raises(rotate_keys.Refused, match="no key is staged"):
        rotate_keys.promote(directory, now, TIMING)
    rotate_keys.stage(directory, now)
    staged = read_key_set(directory, private=True).staged()
    assert staged is not None
    with pytest.raises(rotate_keys.Refused, match="already staged"):
        rotate_keys.stage(directory, now)
    assert published_kids(directory, now) == {first.kid, staged.kid}
    signing = KeyDirectory(directory, private=True, reload_interval=0)
    signer = TokenSigner(DirectorySigningKeys(signing), 60)
    before, _ = signer.issue(uuid.uuid4(), Role.CUSTOMER, True)
    assert jwt.get_unverified_header(before)["kid"] == first.kid  # staged: not signing yet

    with pytest.raises(rotate_keys.Refused, match="promote it after 65 s"):
        rotate_keys.promote(directory, now + 64, TIMING)
    promoted_at = now + 65
    rotate_keys.promote(directory, promoted_at, TIMING)
    after, _ = signer.issue(uuid.uuid4(), Role.CUSTOMER, True)
    assert jwt.get_unverified_header(after)["kid"] == staged.kid
    assert published_kids(directory, promoted_at + TIMING.window - 1) == {first.kid, staged.kid}
    assert published_kids(directory, promoted_at + TIMING.window) == {staged.kid}

    with pytest.raises(rotate_keys.Refused, match="may still verify tokens for 1 s"):
        rotate_keys.drop(directory, promoted_at + TIMING.window - 1, TIMING)
    rotate_keys.drop(directory, promoted_at + TIMING.window, TIMING)
    assert [e.kid for e in read_key_set(directory, private=True).entries] == [staged.kid]
    assert not (directory / private_name(first.kid)).exists()
    with pytest.raises(rotate_keys.Refused, match="no retired key"):
        rotate_keys.drop(directory, promoted_at + TIMING.window, TIMING)


def test_a_broken_directory_keeps_the_last_good_keys(tmp_path: Path) -> None:
    directory = tmp_path / "jwt"
    rotate_keys.init(directory, time.time())
    keys = KeyDirectory(directory, private=True, reload_interval=0.0)
    good = keys.current().signing()
    (directory / MANIFEST).write_text("{not json")
    assert not keys.reload()
    assert keys.current().signing() == good
    with pytest.raises(ValueError, match="unreadable"):
        KeyDirectory(directory, private=True, reload_interval=0.0)  # at start: no start


def test_a_manifest_whose_kid_is_not_its_keys_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "jwt"
    rotate_keys.init(directory, time.time())
    rows = json.loads((directory / MANIFEST).read_text())["keys"]
    _, public = generate_keypair()
    (directory / f"{rows[0]['kid']}.pub.pem").write_text(public)
    with pytest.raises(ValueError, match="thumbprint"):
        read_key_set(directory, private=False)


def test_the_command_refuses_an_early_step_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = str(tmp_path / "jwt")
    monkeypatch.setenv("JWKS_REFRESH_INTERVAL", "600")
    assert rotate_keys.main(["init", "--dir", directory]) == 0
    assert rotate_keys.main(["stage", "--dir", directory]) == 0
    assert rotate_keys.main(["promote", "--dir", directory]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("rotate-keys: key ")
    assert "promote it after 605 s" in err
    assert len(err.splitlines()) == 1
    assert rotate_keys.main(["status", "--dir", directory]) == 0
    out = capsys.readouterr().out
    assert "signing " in out
    assert "next " in out


def test_a_second_copy_refuses_while_the_lock_is_held(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = str(tmp_path / "jwt")
    monkeypatch.setenv("LOCK_WAIT", "0")
    with file_lock("rotate-keys"):  # the copy already running
        assert rotate_keys.main(["init", "--dir", directory]) == 2
    assert "another copy is running" in capsys.readouterr().err
    assert not (tmp_path / "jwt").exists()
    assert rotate_keys.main(["init", "--dir", directory]) == 0  # the lock died with it


def test_make_keys_directory_signs_with_the_pair_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The development pair is the directory's signing key: tokens of the pair verify
    through the JWK Set, and a run from before `jwt/` existed logs nobody out."""
    assert keys_tool.main(["--dir", str(tmp_path)]) == 0
    assert f"USERS_JWT_KEYS_DIR={tmp_path / 'jwt'}" in capsys.readouterr().out
    signing = read_key_set(tmp_path / "jwt", private=True).signing()
    assert signing is not None
    pair = load_private_key((tmp_path / "jwt_private.pem").read_text())
    assert signing.kid == key_id(pair.public_key())


# --- each fault of a key directory, named ------------------------------------------


def broken(directory: Path, fault: str) -> None:
    """Break a directory of one signing key (and one retired) in the way `fault` names."""
    manifest = directory / MANIFEST
    rows = json.loads(manifest.read_text())["keys"]
    kid = rows[0]["kid"]
    other_private, other_public = generate_keypair()
    changes: dict[str, object] = {
        "missing": None,
        "not JSON": "{not json",
        "a list": [],
        "no keys": {"nokeys": []},
        "an entry not an object": {"keys": ["x"]},
        "a kid not a thumbprint": {"keys": [{**rows[0], "kid": "../x"}]},
        "an unknown state": {"keys": [{**rows[0], "state": "old"}]},
        "created_at not a time": {"keys": [{**rows[0], "created_at": "yesterday"}]},
        "retired_at not a time": {"keys": [{**rows[0], "retired_at": "x"}]},
        "retired without a time": {"keys": [{**rows[0], "state": "retired"}]},
        "a kid twice": {"keys": [rows[0], rows[0]]},
        "two signing keys": {"keys": [rows[0], {**rows[1], "state": "signing"}]},
        "two next keys": {"keys": [{**rows[0], "state": "next"}, {**rows[1], "state": "next"}]},
    }
    if fault in changes:
        change = changes[fault]
        if change is None:
            manifest.unlink()
        else:
            manifest.write_text(change if isinstance(change, str) else json.dumps(change))
    elif fault == "no public file":
        (directory / f"{kid}.pub.pem").unlink()
    elif fault == "a public file not PEM":
        (directory / f"{kid}.pub.pem").write_text("garbage")
    elif fault == "another public key":
        (directory / f"{kid}.pub.pem").write_text(other_public)
    elif fault == "no private file":
        (directory / private_name(kid)).unlink()
    elif fault == "another private key":
        (directory / private_name(kid)).write_text(other_private)


FAULTS = {
    "missing": r"keys\.json: missing \(make keys",
    "not JSON": r"keys\.json: unreadable \(JSONDecodeError\)",
    "a list": r"keys\.json: no 'keys' array",
    "no keys": r"keys\.json: no 'keys' array",
    "an entry not an object": r"keys\.json: an entry is not an object",
    "a kid not a thumbprint": r"keys\.json: '\.\./x' is not a key id",
    "an unknown state": r"keys\.json: key \S+ has state 'old'",
    "created_at not a time": r"created_at/retired_at must be Unix seconds",
    "retired_at not a time": r"created_at/retired_at must be Unix seconds",
    "retired without a time": r"retired key \S+ has no retired_at",
    "a kid twice": r"keys\.json: a kid appears twice",
    "two signing keys": r"keys\.json: more than one signing key",
    "two next keys": r"keys\.json: more than one next key",
    "no public file": r"\.pub\.pem: unreadable \(No such file or directory\)",
    "a public file not PEM": r"\.pub\.pem: JWT public key is not a valid PEM",
    "another public key": r"\.pub\.pem: its thumbprint is not ",
    "no private file": r"\.pem: unreadable \(No such file or directory\)",
    "another private key": r"\.pem: not the private half of ",
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_broken_directory_names_its_file_and_fault(tmp_path: Path, fault: str) -> None:
    directory, now = tmp_path / "jwt", time.time()
    rotate_keys.init(directory, now)
    rotate_keys.stage(directory, now)
    rotate_keys.promote(directory, now + TIMING.publish_wait, TIMING)  # signing, retired
    rows = json.loads((directory / MANIFEST).read_text())["keys"]
    rows.sort(key=lambda row: row["state"] != "signing")  # the signing key first
    (directory / MANIFEST).write_text(json.dumps({"keys": rows}))
    broken(directory, fault)
    with pytest.raises(ValueError, match=FAULTS[fault]) as caught:
        read_key_set(directory, private=True)
    assert str(directory) in str(caught.value)
    if "public" in fault or "private" in fault:  # the file named is the key's own
        assert str(caught.value).startswith(f"{directory}/{rows[0]['kid']}.")


def test_a_retired_keys_private_half_is_never_read(tmp_path: Path) -> None:
    directory, now = tmp_path / "jwt", time.time()
    rotate_keys.init(directory, now)
    retired = read_key_set(directory, private=True).signing()
    assert retired is not None
    rotate_keys.stage(directory, now)
    rotate_keys.promote(directory, now + TIMING.publish_wait, TIMING)
    (directory / private_name(retired.kid)).unlink()
    keys = read_key_set(directory, private=True)
    assert [e.private is None for e in keys.entries] == [True, False]
    assert keys.staged() is None


# --- reading again, and the sources over the directory -------------------------------


def test_the_directory_is_read_again_once_the_interval_has_passed(tmp_path: Path) -> None:
    directory, clock = tmp_path / "jwt", [100.0]
    rotate_keys.init(directory, time.time())
    keys = KeyDirectory(directory, private=True, reload_interval=5.0, monotonic=lambda: clock[0])
    rotate_keys.stage(directory, time.time())
    clock[0] = 104.5
    assert keys.since_read() == 4.5
    assert keys.current().staged() is None  # not read again yet
    clock[0] = 105.0
    assert keys.current().staged() is not None
    assert keys.since_read() == 0.0


def test_a_failed_read_again_is_logged_and_keeps_the_keys(tmp_path: Path) -> None:
    directory = tmp_path / "jwt"
    rotate_keys.init(directory, time.time())
    keys = KeyDirectory(directory, private=True, reload_interval=60.0)
    assert keys.reload() is True
    (directory / MANIFEST).write_text("{not json")
    with structlog.testing.capture_logs() as logs:
        assert keys.reload() is False
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("key directory unreadable, keeping the last keys", "warning")
    ]
    assert str(directory / MANIFEST) in logs[0]["error"]
    assert keys.current().signing() is not None


def test_the_directory_sources_sign_and_verify_by_kid(tmp_path: Path) -> None:
    directory, now, clock = tmp_path / "jwt", time.time(), [0.0]
    rotate_keys.init(directory, now)
    first = read_key_set(directory, private=True).signing()
    assert first is not None
    rotate_keys.stage(directory, now)
    rotate_keys.promote(directory, now + 65, TIMING)
    signing = read_key_set(directory, private=True).signing()
    assert signing is not None
    wall = [now + 65 + TIMING.window - 1]
    verifying = DirectoryKeys(
        KeyDirectory(directory, private=False, reload_interval=60.0, monotonic=lambda: clock[0]),
        window=TIMING.window,
        min_refresh=2.0,
        now=lambda: wall[0],
    )
    assert verifying.key(signing.kid) == signing.public
    assert verifying.key(first.kid) == first.public  # retired, inside its window
    assert verifying.key(RFC_KID) is None
    wall[0] += 1
    assert verifying.key(first.kid) is None  # its window has passed
    clock[0] = 1.9
    assert not asyncio.run(verifying.refresh())  # read again too soon
    clock[0] = 2.0
    assert asyncio.run(verifying.refresh())
    kid, private = DirectorySigningKeys(
        KeyDirectory(directory, private=True, reload_interval=60)
    ).signing_key()
    assert (kid, key_id(private.public_key())) == (signing.kid, signing.kid)
    with pytest.raises(ValueError, match=f"^{re.escape(str(directory))}: no signing key$"):
        DirectorySigningKeys(
            KeyDirectory(directory, private=False, reload_interval=60)
        ).signing_key()


def test_a_set_without_a_signing_key_has_none(tmp_path: Path) -> None:
    assert KeySetOf(()).signing() is None
    assert not asyncio.run(StaticKeys([]).refresh())


def test_b64url_refuses_what_is_not_base64url() -> None:
    for text in ("a b", "A", "AAAAA"):
        with pytest.raises(ValueError, match=r"^not base64url$"):
            b64url_decode(text)
    assert b64url_decode("AAA") == b"\x00\x00"
    assert b64url_decode("AAAAAAAAAA") == bytes(7)  # two characters of padding put back
    assert b64url(b"\x00\x00\x17") == "AAAX"  # only '=' is stripped


def test_a_jwk_set_keeps_its_keys_and_its_limit() -> None:
    keys = [load_public_key(generate_keypair()[1]) for _ in range(MAX_JWKS_KEYS)]
    parsed = parse_jwks(jwks_document(keys))
    assert len(parsed) == MAX_JWKS_KEYS
    assert all(raw_public(parsed[key_id(k)]) == raw_public(k) for k in keys)
    assert parse_jwk({"kty": "OKP", "crv": "Ed25519", "x": 7, "kid": RFC_KID}) is None
    with pytest.raises(ValueError, match=r"^not a JWK Set: no 'keys' array$"):
        parse_jwks({"keys": None})
    with pytest.raises(ValueError, match=f"^a JWK Set of 65 keys \\(at most {MAX_JWKS_KEYS}\\)$"):
        parse_jwks({"keys": [{}] * 65})


def test_users_signs_with_the_key_directory_s_private_half(tmp_path: Path) -> None:
    """JWT_KEYS_DIR: users reads the directory's private halves (only users may) and signs
    with its signing key; what it publishes verifies that token."""
    assert keys_tool.main(["--dir", str(tmp_path)]) == 0
    settings = UsersSettings(database_url="", jwt_keys_dir=str(tmp_path / "jwt"))
    signing, published = signing_keys(settings, time.time)
    assert signing is not None
    assert published is not None
    kid, private = signing.signing_key()
    written = read_key_set(tmp_path / "jwt", private=False).signing()
    assert written is not None
    assert kid == written.kid
    assert private.public_key().public_bytes_raw() in [
        key.public_bytes_raw() for key in published.published()
    ]
