"""Keyrings (lib/keyring.py, ADR 0046): one file format for every secret and its refusals,
the one state machine (stage, promote, drop) with each secret's gates, the field cipher's
one envelope, picture URLs and tokens under a rotation, a keyring file read again, what
earlier versions wrote migrated, and every secret setting read from `<NAME>_FILE`."""

from __future__ import annotations

import base64
import json
import re
import stat
import time
import uuid
from collections import Counter
from pathlib import Path

import jwt
import pytest
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lib.auth.jwks import key_id
from lib.auth.keysources import DirectoryKeys, DirectorySigningKeys
from lib.auth.pem import generate_keypair, load_private_key, load_public_key
from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from lib.config import ConfigError, load_settings
from lib.crypto import MAGIC, NONCE_BYTES, FieldCipher, sealed_kid
from lib.keyring import (
    Keyring,
    KeyringFile,
    ed25519,
    parse_keyring,
    read_keyring,
    symmetric,
    write_keyring,
)
from lib.storage import LocalStorage
from services.users.settings import UsersSettings
from tools.secrets import legacy, rotate
from tools.secrets.rotate import SECRETS, Refused, drop, promote, stage

A, B = b"a" * 32, b"b" * 32
OWNER = uuid.UUID(int=7).bytes
ENCRYPTION, STORAGE, JWT = SECRETS["encryption"], SECRETS["storage"], SECRETS["jwt"]
PUBLISH, WINDOW = 65.0, 910.0  # the signing key's gates (reload + refresh; token life...)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ring_of(*keys: tuple[str, str, bytes]) -> str:
    return Keyring(tuple(symmetric(kid, secret, state) for kid, state, secret in keys)).text()  # type: ignore[arg-type]


def test_one_format_reads_back_for_symmetric_keys_and_key_pairs() -> None:
    ring = parse_keyring(ring_of(("k2", "next", B), ("k1", "current", A), ("k0", "retired", A)))
    assert (ring.current.kid, ring.current.secret) == ("k1", A)
    assert (ring.get("k2"), ring.get(None), ring.get("k9")) == (B, A, None)
    assert parse_keyring(ring.text()) == ring
    assert json.loads(ring.text())["keys"][0] == {
        "kid": "k2", "kty": "oct", "k": "YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI",
        "state": "next", "created_at": 0.0,
    }  # fmt: skip
    pair = Ed25519PrivateKey.generate()
    signing = parse_keyring(Keyring((ed25519(pair),)).text())
    assert signing.current.kid == key_id(pair.public_key())
    assert signing.current.public.public_bytes_raw() == pair.public_key().public_bytes_raw()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("k1:current:" + b64(A), "not a keyring: not JSON"),
        ('{"nokeys": []}', "not a keyring: no 'keys' array"),
        ('{"keys": ["x"]}', "key 1 is not an object"),
        (ring_of(("K/1", "current", A)), "key 1: its id must be 1-8 of [a-z0-9] or a thumbprint"),
        (ring_of(("k1", "old", A)), "key k1: state must be one of next, current, retired"),
        (ring_of(("k1", "current", b"short")), "key k1: must decode to at least 16 bytes"),
        (ring_of(("k1", "current", A), ("k1", "next", B)), "key k1 appears twice"),
        (ring_of(("k1", "next", A)), "a keyring needs exactly one current key, found 0"),
        (ring_of(("k1", "current", A), ("k2", "current", B)), "exactly one current key, found 2"),
        ('{"keys": [{"kid": "k1", "state": "current", "kty": "RSA"}]}', "key k1: not a symmetric"),
    ],
)
def test_a_malformed_keyring_is_refused_naming_the_key_never_the_secret(
    text: str, says: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as refused:
        parse_keyring(text)
    assert b64(A) not in str(refused.value)
    with pytest.raises(ValueError, match=r"^key k1: must decode to 32 bytes, got 16$"):
        parse_keyring(ring_of(("k1", "current", A[:16])), exact_bytes=32)


def test_a_value_names_its_key_and_opens_after_a_rotation_until_dropped() -> None:
    before = FieldCipher(Keyring.single(A))
    sealed = before.encrypt("AB123456", associated=OWNER)
    assert sealed.startswith(MAGIC + b"\x02k0")
    assert sealed_kid(sealed) == "k0"
    staged = stage(before.keys, ENCRYPTION, 0.0)
    assert [(k.kid, k.state) for k in staged.keys] == [("k0", "current"), ("k1", "next")]
    rotated = FieldCipher(promote(staged, ENCRYPTION, 0.0, 0.0))
    assert rotated.keys.current.kid == "k1"
    assert rotated.decrypt(sealed, associated=OWNER) == "AB123456"  # the retired key
    again = rotated.encrypt(rotated.decrypt(sealed, associated=OWNER), associated=OWNER)
    assert sealed_kid(again) == "k1"
    dropped = FieldCipher(drop(rotated.keys, ENCRYPTION, 0.0, 0.0, Counter()))
    assert [k.kid for k in dropped.keys.keys] == ["k1"]
    assert dropped.decrypt(again, associated=OWNER) == "AB123456"
    with pytest.raises(InvalidTag):
        dropped.decrypt(sealed, associated=OWNER)  # its key is gone: refused, not garbage


def test_a_value_outside_the_envelope_is_refused_until_migrated() -> None:
    nonce = b"n" * NONCE_BYTES
    bare = nonce + AESGCM(A).encrypt(nonce, b"AB123456", OWNER)  # sealed before keyrings
    assert sealed_kid(bare) is None
    with pytest.raises(InvalidTag):  # no guess: only the envelope opens
        FieldCipher(Keyring.single(A)).decrypt(bare, associated=OWNER)


def test_drop_is_refused_while_values_need_the_key_and_steps_keep_their_order() -> None:
    ring = promote(stage(Keyring.single(A), ENCRYPTION, 0.0), ENCRYPTION, 0.0, 0.0)
    with pytest.raises(Refused) as refused:
        drop(ring, ENCRYPTION, 0.0, 0.0, Counter({"k0": 3, "k1": 5}))
    assert str(refused.value) == "encryption: values still sealed under k0: 3 (run reencrypt)"
    with pytest.raises(Refused, match="already staged"):
        stage(stage(ring, ENCRYPTION, 0.0), ENCRYPTION, 0.0)  # one next key at a time
    with pytest.raises(Refused, match="no next key is staged"):
        promote(ring, ENCRYPTION, 0.0, 0.0)
    with pytest.raises(Refused, match="no retired key to drop"):
        drop(Keyring.single(A), ENCRYPTION, 0.0, 0.0, Counter())


def test_a_picture_url_stays_valid_after_a_rotation_until_its_key_is_dropped(
    tmp_path: Path,
) -> None:
    old = LocalStorage(tmp_path, signing_key=Keyring.single(A), ttl=60)
    at = 2_000_000_000
    sig = old.sign("p.png", at)
    staged = LocalStorage(tmp_path, signing_key=stage(old.keys, STORAGE, 0.0), ttl=60)
    assert staged.keys.current.kid == "k0"  # staged: accepted, not yet signing
    ring = promote(staged.keys, STORAGE, 0.0, 0.0)
    promoted = LocalStorage(tmp_path, signing_key=ring, ttl=60)
    assert promoted.check("p.png", str(at), sig, "k0", now=at - 1)
    assert promoted.check("p.png", str(at), sig, None, now=at - 1)  # a URL without kid
    assert not promoted.check("p.png", str(at), sig, "k0", now=at)  # expired all the same
    assert not promoted.check("p.png", str(at), sig, "k1", now=at - 1)  # another key's
    assert not promoted.check("p.png", str(at), sig, "k7", now=at - 1)  # unknown key
    dropped = LocalStorage(tmp_path, signing_key=drop(ring, STORAGE, 0, 0, Counter()), ttl=60)
    assert not dropped.check("p.png", str(at), sig, "k0", now=at - 1)
    assert dropped.check("p.png", str(at), dropped.sign("p.png", at), "k1", now=at - 1)


def published_kids(path: Path, now: float) -> set[str]:
    keys = DirectoryKeys(
        KeyringFile(path, reload_interval=0.0), window=WINDOW, min_refresh=0.0, now=lambda: now
    )
    return {key_id(k) for k in keys.published()}


def test_the_signing_key_stages_promotes_and_drops_behind_its_gates(tmp_path: Path) -> None:
    path, now = tmp_path / "keyring.json", time.time()
    write_keyring(path, stage(None, JWT, now))
    first = read_keyring(path).current
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_keyring(path, stage(read_keyring(path), JWT, now))
    staged = read_keyring(path).keys[1]
    assert published_kids(path, now) == {first.kid, staged.kid}
    signer = TokenSigner(DirectorySigningKeys(KeyringFile(path, reload_interval=0)), 60)
    before, _ = signer.issue(uuid.uuid4(), Role.CUSTOMER, True)
    assert jwt.get_unverified_header(before)["kid"] == first.kid  # staged: not signing yet

    with pytest.raises(Refused, match="promote it after 65 s"):
        promote(read_keyring(path), JWT, now + 64, PUBLISH)
    at = now + PUBLISH
    write_keyring(path, promote(read_keyring(path), JWT, at, PUBLISH))
    after, _ = signer.issue(uuid.uuid4(), Role.CUSTOMER, True)
    assert jwt.get_unverified_header(after)["kid"] == staged.kid
    assert "d" not in read_keyring(path).keys[0].jwk  # a retired pair never signs again
    assert published_kids(path, at + WINDOW - 1) == {first.kid, staged.kid}
    assert published_kids(path, at + WINDOW) == {staged.kid}
    with pytest.raises(Refused, match="for 1 s"):
        drop(read_keyring(path), JWT, at + WINDOW - 1, WINDOW, Counter())
    final = drop(read_keyring(path), JWT, at + WINDOW, WINDOW, Counter())
    assert [k.kid for k in final.keys] == [staged.kid]


def test_a_keyring_file_is_read_again_and_a_failed_read_keeps_the_keys(tmp_path: Path) -> None:
    path, clock = tmp_path / "keyring.json", [100.0]
    write_keyring(path, Keyring.single(A))
    keys = KeyringFile(path, reload_interval=5.0, monotonic=lambda: clock[0])
    write_keyring(path, stage(Keyring.single(A), STORAGE, 0.0))
    clock[0] = 104.5
    assert len(keys.current().keys) == 1  # not read again yet
    clock[0] = 105.0
    assert len(keys.current().keys) == 2
    path.write_text("{not json")
    with structlog.testing.capture_logs() as logs:
        assert keys.reload() is False
    assert logs[0]["event"] == "keyring unreadable, keeping the last keys"
    assert str(path) in logs[0]["error"]
    assert len(keys.current().keys) == 2
    with pytest.raises(ValueError, match="not JSON"):
        KeyringFile(path, reload_interval=5.0)  # at start: no start


async def test_an_unknown_kid_reads_the_keyring_again_at_most_once_per_min_refresh(
    tmp_path: Path,
) -> None:
    path, clock, now = tmp_path / "keyring.json", [100.0], time.time()
    write_keyring(path, stage(None, JWT, now))
    first = read_keyring(path).current
    ring = KeyringFile(path, reload_interval=3600.0, monotonic=lambda: clock[0])
    keys = DirectoryKeys(ring, window=WINDOW, min_refresh=10.0, now=lambda: now)
    assert keys.key(first.kid) == first.public
    write_keyring(path, stage(read_keyring(path), JWT, now))
    staged = read_keyring(path).keys[1]
    assert keys.key(staged.kid) is None  # not read again yet
    clock[0] = 109.0
    assert await keys.refresh() is False  # 9 s since the last read: refused
    assert keys.key(staged.kid) is None
    clock[0] = 110.0
    assert await keys.refresh() is True
    assert keys.key(staged.kid) == staged.public
    assert await keys.refresh() is False  # the read just now counts


def test_the_files_of_earlier_versions_migrate(tmp_path: Path) -> None:
    """A key directory (keys.json + PEMs: a signing key and a retired one) and a
    `kid:state:base64` ring, as earlier versions wrote them, read back as keyrings."""
    directory = tmp_path / "jwt"
    directory.mkdir()
    (signing_pem, _), (_, retired_pub) = generate_keypair(), generate_keypair()
    signing = ed25519(load_private_key(signing_pem))
    retired_kid = key_id(load_public_key(retired_pub))
    (directory / f"{signing.kid}.pem").write_text(signing_pem)
    (directory / f"{retired_kid}.pub.pem").write_text(retired_pub)
    rows = [
        {"kid": signing.kid, "state": "signing", "created_at": 2.0, "retired_at": None},
        {"kid": retired_kid, "state": "retired", "created_at": 1.0, "retired_at": 2.0},
    ]
    (directory / "keys.json").write_text(json.dumps({"keys": rows}))
    ring = legacy.from_key_directory(directory)
    assert [(k.kid, k.state, k.retired_at) for k in ring.keys] == [
        (signing.kid, "current", None),
        (retired_kid, "retired", 2.0),
    ]
    assert ring.current.private.public_key().public_bytes_raw() == signing.public.public_bytes_raw()
    lines = legacy.from_lines(f"k1:current:{b64(B)},k0:previous:{b64(A)}\nk2:next:{b64(A)}", 9.0)
    assert [(k.kid, k.state, k.secret) for k in lines.keys] == [
        ("k1", "current", B), ("k0", "retired", A), ("k2", "next", A)
    ]  # fmt: skip
    assert lines.keys[1].retired_at == 9.0
    with pytest.raises(ValueError, match=r"^entry 2 is not kid:state:base64-secret$"):
        legacy.from_lines(f"k1:current:{b64(B)},k0:{b64(A)}", 9.0)


def test_every_secret_setting_reads_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = ring_of(("k1", "current", B), ("k0", "retired", A))
    (tmp_path / "storage.keys").write_text(ring)
    (tmp_path / "smtp").write_text("s3cr3t\n")
    (tmp_path / "s3").write_text("AKIAsecret")
    monkeypatch.setenv("STORAGE_SIGNING_KEYS_FILE", str(tmp_path / "storage.keys"))
    monkeypatch.setenv("USERS_SMTP_PASSWORD_FILE", str(tmp_path / "smtp"))
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY_FILE", str(tmp_path / "s3"))
    settings = load_settings(UsersSettings, "users", env_file=tmp_path / "no.env")
    assert settings.storage_keyring() == parse_keyring(ring)
    assert settings.smtp_password.get_secret_value() == "s3cr3t"  # less its newline
    assert settings.s3_secret_access_key.get_secret_value() == "AKIAsecret"
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", "inline")  # the value wins over its file
    settings = load_settings(UsersSettings, "users", env_file=tmp_path / "no.env")
    assert settings.s3_secret_access_key.get_secret_value() == "inline"


def test_an_unreadable_secret_file_stops_the_service_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(ConfigError):
        load_settings(UsersSettings, "users", env_file=tmp_path / "no.env")
    assert capsys.readouterr().err.startswith(
        f"config: SMTP_PASSWORD_FILE: cannot read {tmp_path / 'absent'}: No such file"
    )


def test_a_malformed_keyring_file_stops_the_service_without_printing_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "encryption.keys").write_text(ring_of(("k1", "current", b"x" * 31)))
    monkeypatch.setenv("ENCRYPTION_KEYS_FILE", str(tmp_path / "encryption.keys"))
    with pytest.raises(ConfigError):
        load_settings(UsersSettings, "users", env_file=tmp_path / "no.env")
    err = capsys.readouterr().err
    assert "ENCRYPTION_KEYS / ENCRYPTION_KEY: key k1: must decode to 32 bytes, got 31" in err
    assert b64(b"x" * 31) not in err


def test_the_secrets_dir_gives_each_file_as_the_setting_it_is_named_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Kubernetes Secret mounted as a volume: one file a key, beside the kubelet's own
    dot-named links; a variable and a `<NAME>_FILE` both win over the directory."""
    mounted = tmp_path / "secrets"
    mounted.mkdir()
    (mounted / "..data").mkdir()
    ring = ring_of(("k1", "current", B))
    (mounted / "ENCRYPTION_KEYS").write_text(ring)
    (mounted / "USERS_DATABASE_URL").write_text("postgresql://u:pw@db:5432/fixup_users\n")
    (mounted / "SMTP_PASSWORD").write_text("from the dir")
    (tmp_path / "smtp").write_text("from its file")
    (mounted / "S3_SECRET_ACCESS_KEY").write_text("from the dir")
    monkeypatch.setenv("SECRETS_DIR", str(mounted))
    monkeypatch.setenv("SMTP_PASSWORD_FILE", str(tmp_path / "smtp"))
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", "inline")
    settings = load_settings(UsersSettings, "users", env_file=tmp_path / "no.env")
    assert settings.encryption_keyring() == parse_keyring(ring)
    assert settings.database_url == "postgresql://u:pw@db:5432/fixup_users"
    assert settings.smtp_password.get_secret_value() == "from its file"
    assert settings.s3_secret_access_key.get_secret_value() == "inline"


def test_a_missing_secrets_dir_stops_the_service_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path / "absent"))
    with pytest.raises(ConfigError):
        load_settings(UsersSettings, "users", env_file=tmp_path / "no.env")
    assert f"config: SECRETS_DIR: cannot read {tmp_path / 'absent'}" in capsys.readouterr().err


def test_the_command_stages_promotes_and_drops_the_picture_key_in_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ring_file = tmp_path / "keys" / "storage.keys"
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("STORAGE_SIGNING_KEY", "the single key of before")
    monkeypatch.setenv("STORAGE_SIGNING_KEYS_FILE", str(ring_file))
    assert rotate.main(["storage", "stage"]) == 0
    assert stat.S_IMODE(ring_file.stat().st_mode) == 0o600
    staged = parse_keyring(ring_file.read_text())
    assert staged.get("k0") == b"the single key of before"  # the old key, as k0
    assert [(k.kid, k.state) for k in staged.keys] == [("k0", "current"), ("k1", "next")]
    assert rotate.main(["storage", "promote"]) == 0
    assert rotate.main(["storage", "drop"]) == 0
    final = parse_keyring(ring_file.read_text())
    assert [(k.kid, k.state) for k in final.keys] == [("k1", "current")]
    assert final.current.secret == staged.get("k1")
    out = capsys.readouterr().out
    assert "storage: k1 current (" in out
    assert b64(final.current.secret) not in out
