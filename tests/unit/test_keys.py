"""tools.keys' development keys (the JWT pair, the ENCRYPTION_KEY file), and the services
reading them."""

from __future__ import annotations

import base64
import stat
import uuid
from pathlib import Path

import pytest

from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner, TokenVerifier
from lib.config import ConfigError, ServiceSettings, load_settings
from lib.crypto import FieldCipher, generate_key
from services.users.settings import UsersSettings
from tools import keys as keys_tool


def test_keys_writes_keys_the_services_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert keys_tool.main(["--dir", str(tmp_path)]) == 0
    path = tmp_path / "encryption.key"
    private_path, public_path = tmp_path / "jwt_private.pem", tmp_path / "jwt_public.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert public_path.is_file()
    assert len(base64.b64decode(path.read_text().strip(), validate=True)) == 32
    out = capsys.readouterr().out
    assert f"ENCRYPTION_KEY_FILE={path}" in out
    assert f"JWT_PRIVATE_KEY_FILE={private_path}" in out
    assert f"JWT_PUBLIC_KEY_FILE={public_path}" in out

    monkeypatch.delenv("ENCRYPTION_KEY", raising=False)
    monkeypatch.setenv("ENCRYPTION_KEY_FILE", str(path))
    settings = load_settings(UsersSettings, "users", env_file=tmp_path / "no.env")
    key = settings.encryption_key.get_secret_value()
    assert key == path.read_text().strip()
    owner = uuid.uuid4().bytes
    sealed = FieldCipher(key).encrypt("AB123456", associated=owner)
    assert FieldCipher(key).decrypt(sealed, associated=owner) == "AB123456"
    pair = ServiceSettings.model_validate(
        {"jwt_private_key_file": str(private_path), "jwt_public_key_file": str(public_path)}
    )
    token, issued = TokenSigner(pair.private_key_pem(), 900).issue(uuid.uuid4(), Role.ADMIN, True)
    assert TokenVerifier(pair.public_key_pem()).verify(token) == issued


def test_an_inline_encryption_key_wins_over_the_file(tmp_path: Path) -> None:
    (tmp_path / "encryption.key").write_text(generate_key())
    inline = generate_key()
    settings = UsersSettings.model_validate(
        {"encryption_key": inline, "encryption_key_file": str(tmp_path / "encryption.key")}
    )
    assert settings.encryption_key.get_secret_value() == inline


def test_a_missing_encryption_key_file_stops_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENCRYPTION_KEY_FILE", str(tmp_path / "absent.key"))
    with pytest.raises(ConfigError):
        load_settings(UsersSettings, "users", env_file=tmp_path / "no.env")
    err = capsys.readouterr().err
    assert "config: ENCRYPTION_KEY_FILE: " in err
    assert "make keys" in err


def test_missing_writes_only_what_is_absent(tmp_path: Path) -> None:
    """What `make run` calls: an older checkout with only the JWT pair gets the key too."""
    assert keys_tool.main(["--dir", str(tmp_path)]) == 0
    pair = {name: (tmp_path / name).read_text() for name in ("jwt_private.pem", "jwt_public.pem")}
    (tmp_path / "encryption.key").unlink()

    assert keys_tool.main(["--dir", str(tmp_path), "--missing"]) == 0
    assert (tmp_path / "encryption.key").is_file()
    assert {name: (tmp_path / name).read_text() for name in pair} == pair
    key = (tmp_path / "encryption.key").read_text()

    assert keys_tool.main(["--dir", str(tmp_path), "--missing"]) == 0  # nothing to do
    assert (tmp_path / "encryption.key").read_text() == key


def test_without_force_nothing_is_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "encryption.key").write_text("old")
    assert keys_tool.main(["--dir", str(tmp_path)]) == 1
    assert "encryption.key already exists (--force replaces)" in capsys.readouterr().err
    assert (tmp_path / "encryption.key").read_text() == "old"
    assert not (tmp_path / "jwt_private.pem").exists()  # nothing half-written

    (tmp_path / "encryption.key").chmod(0o644)
    assert keys_tool.main(["--dir", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "encryption.key").read_text() != "old"
    assert stat.S_IMODE((tmp_path / "encryption.key").stat().st_mode) == 0o600  # narrowed
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["encryption.key", "jwt", "jwt_private.pem", "jwt_public.pem"]
