"""Keyrings (lib/keyring.py, ADR 0036): their text form and its refusals, the field cipher
and the picture URLs under a rotation, values from before keyrings, and every secret
setting read from `<NAME>_FILE`."""

from __future__ import annotations

import base64
import re
import stat
import uuid
from collections import Counter
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lib.config import ConfigError, load_settings
from lib.crypto import MAGIC, NONCE_BYTES, FieldCipher, sealed_kid
from lib.keyring import Key, Keyring, new_kid, parse_keyring
from lib.storage import LocalStorage
from services.users.settings import UsersSettings
from tools import rotate_secrets
from tools.rotate_secrets import SECRETS, promote, retire, stage


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


A, B = b"a" * 32, b"b" * 32
OWNER = uuid.UUID(int=7).bytes
ENCRYPTION = SECRETS["encryption"]


def test_the_text_form_reads_back() -> None:
    ring = parse_keyring(f"k2:next:{b64(B)}, k1:current:{b64(A)}\nk0:previous:{b64(b'c' * 16)}")
    assert ring.current == Key("k1", "current", A)
    assert [k.kid for k in ring.keys] == ["k2", "k1", "k0"]
    assert (ring.get("k2"), ring.get(None), ring.get("k9")) == (B, b"c" * 16, None)
    assert parse_keyring(ring.text()) == ring
    assert new_kid(ring) == "k3"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("k1:current", "entry 1 is not kid:state:base64-secret"),
        (f"K/1:current:{b64(A)}", "entry 1: key id must be 1-8 of [a-z0-9]"),
        (f"k1:old:{b64(A)}", "key k1: state must be one of current, next, previous"),
        ("k1:current:not*base64", "key k1: the secret is not base64"),
        (f"k1:current:{b64(b'short')}", "key k1: must decode to at least 16 bytes"),
        (f"k1:current:{b64(A)},k1:next:{b64(B)}", "key k1 appears twice"),
        (f"k1:next:{b64(A)}", "a keyring needs exactly one current key, found 0"),
        (f"k1:current:{b64(A)},k2:current:{b64(B)}", "exactly one current key, found 2"),
    ],
)
def test_a_malformed_keyring_is_refused_naming_the_entry_never_the_secret(
    text: str, says: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as refused:
        parse_keyring(text)
    assert b64(A) not in str(refused.value)


def test_an_encryption_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match=r"^key k1: must decode to 32 bytes, got 16$"):
        parse_keyring(f"k1:current:{b64(b'x' * 16)}", exact_bytes=32)


def test_a_value_names_its_key_and_opens_after_a_rotation_until_retired() -> None:
    before = FieldCipher(Keyring.single(A))
    sealed = before.encrypt("AB123456", associated=OWNER)
    assert sealed.startswith(MAGIC + b"\x02k0")
    assert sealed_kid(sealed) == "k0"
    staged = stage(before.keys, ENCRYPTION)
    assert [(k.kid, k.state) for k in staged.keys] == [("k0", "current"), ("k1", "next")]
    rotated = FieldCipher(promote(staged, ENCRYPTION))
    assert rotated.keys.current.kid == "k1"
    assert rotated.decrypt(sealed, associated=OWNER) == "AB123456"  # the previous key
    assert not rotated.is_current(sealed)
    again = rotated.encrypt(rotated.decrypt(sealed, associated=OWNER), associated=OWNER)
    assert sealed_kid(again) == "k1"
    assert rotated.is_current(again)
    retired = FieldCipher(retire(rotated.keys, ENCRYPTION, still_used=Counter()))
    assert [k.kid for k in retired.keys.keys] == ["k1"]
    assert retired.decrypt(again, associated=OWNER) == "AB123456"
    with pytest.raises(InvalidTag):
        retired.decrypt(sealed, associated=OWNER)  # its key is gone: refused, not garbage


def test_a_value_sealed_before_keyrings_opens_with_the_legacy_key() -> None:
    nonce = b"n" * NONCE_BYTES
    legacy = nonce + AESGCM(A).encrypt(nonce, b"AB123456", OWNER)  # the old format
    ring = parse_keyring(f"k1:current:{b64(B)},k0:previous:{b64(A)}", exact_bytes=32)
    assert sealed_kid(legacy) is None
    assert FieldCipher(ring).decrypt(legacy, associated=OWNER) == "AB123456"
    with pytest.raises(InvalidTag):
        FieldCipher(Keyring((Key("k1", "current", B),))).decrypt(legacy, associated=OWNER)


def test_retire_is_refused_while_values_need_the_key() -> None:

    ring = promote(stage(Keyring.single(A), ENCRYPTION), ENCRYPTION)
    with pytest.raises(SystemExit) as refused:
        retire(ring, ENCRYPTION, Counter({"k0": 3, "k1": 5}))
    assert str(refused.value) == "encryption: values still sealed under k0: 3 (run reencrypt)"
    with pytest.raises(SystemExit):
        stage(stage(ring, ENCRYPTION), ENCRYPTION)  # one next key at a time
    with pytest.raises(SystemExit):
        promote(ring, ENCRYPTION)  # nothing staged


def test_a_picture_url_stays_valid_after_a_rotation_until_its_key_is_retired(
    tmp_path: Path,
) -> None:
    storage = SECRETS["storage"]
    old = LocalStorage(tmp_path, signing_key=Keyring.single(A), ttl=60)
    at = 2_000_000_000
    sig = old.sign("p.png", at)
    staged = LocalStorage(tmp_path, signing_key=stage(old.keys, storage), ttl=60)
    assert staged.keys.current.kid == "k0"  # staged: accepted, not yet signing
    promoted = LocalStorage(tmp_path, signing_key=promote(staged.keys, storage), ttl=60)
    assert promoted.check("p.png", str(at), sig, "k0", now=at - 1)
    assert promoted.check("p.png", str(at), sig, None, now=at - 1)  # a URL without kid
    assert not promoted.check("p.png", str(at), sig, "k0", now=at)  # expired all the same
    assert not promoted.check("p.png", str(at), sig, "k1", now=at - 1)  # another key's
    assert not promoted.check("p.png", str(at), sig, "k7", now=at - 1)  # unknown key
    retired = LocalStorage(tmp_path, signing_key=retire(promoted.keys, storage, Counter()), ttl=60)
    assert not retired.check("p.png", str(at), sig, "k0", now=at - 1)
    assert retired.check("p.png", str(at), retired.sign("p.png", at), "k1", now=at - 1)


def test_every_secret_setting_reads_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = f"k1:current:{b64(B)}\nk0:previous:{b64(A)}\n"
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
    (tmp_path / "encryption.keys").write_text(f"k1:current:{b64(b'x' * 31)}")
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
    ring = f"k1:current:{b64(B)}\n"
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


def test_the_command_stages_promotes_and_retires_the_picture_key_in_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ring_file = tmp_path / "keys" / "storage.keys"
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("STORAGE_SIGNING_KEY", "the single key of before")
    monkeypatch.setenv("STORAGE_SIGNING_KEYS_FILE", str(ring_file))
    assert rotate_secrets.main(["stage", "storage"]) == 0
    assert stat.S_IMODE(ring_file.stat().st_mode) == 0o600
    staged = parse_keyring(ring_file.read_text())
    assert staged.get("k0") == b"the single key of before"  # the old key, as k0
    assert [(k.kid, k.state) for k in staged.keys] == [("k0", "current"), ("k1", "next")]
    assert rotate_secrets.main(["promote", "storage"]) == 0
    assert rotate_secrets.main(["retire", "storage"]) == 0
    final = parse_keyring(ring_file.read_text())
    assert [(k.kid, k.state) for k in final.keys] == [("k1", "current")]
    assert final.current.secret == staged.get("k1")
    out = capsys.readouterr().out
    assert "storage: k1 current ->" in out
    assert b64(final.current.secret) not in out
