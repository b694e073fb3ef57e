"""The users service's secrets rotated with an overlap (ADR 0036), on real PostgreSQL and the
real app: a picture URL signed before a rotation stays valid until it expires and is refused
once its key is retired; a mail link survives every rotation (it has no secret behind it);
`make rotate secret=encryption step=reencrypt` stopped half-way (a batch limit, then
SIGKILL) and run again leaves every personal id number readable and on the new key, and a
second run changes nothing; the files and values earlier versions wrote, migrated."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
import uuid
from asyncio.subprocess import PIPE
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lib.auth.jwks import key_id
from lib.auth.keysources import RING
from lib.auth.pem import generate_keypair, load_public_key
from lib.auth.principal import Role
from lib.config import load_settings
from lib.crypto import FieldCipher, prefix, sealed_kid
from lib.keyring import Keyring, read_keyring, symmetric, write_keyring
from lib.storage import LocalStorage
from services.users.app import create_app
from services.users.auth_kit import signing_keys
from services.users.pictures import STORAGE
from services.users.settings import UsersSettings
from tests import pg
from tests.integration.smtp_support import SmtpSink, mail_to, token_in
from tests.integration.users_support import mailing_settings, make_user, users_settings
from tests.pictures_support import png
from tools import keys as keys_tool
from tools.secrets import rotate
from tools.secrets.legacy import envelope
from tools.secrets.rotate import SECRETS, drop, promote, stage
from tools.secrets.sealed import SEALED, counts, reencrypt
from tools.time_scale import scaled

ROOT = Path(__file__).resolve().parents[2]
OLD_STORAGE_KEY = "the picture key before keyrings"
A, B = b"a" * 32, b"b" * 32  # the encryption keys before and after
COUNT = 120  # providers in the re-encryption test


def storage_rings() -> dict[str, Keyring]:
    """The picture-URL keyring at each step of a rotation from the single-key setting."""
    secret = SECRETS["storage"]
    before = Keyring.single(OLD_STORAGE_KEY.encode())
    staged = stage(before, secret, 0.0)
    promoted = promote(staged, secret, 0.0, 0.0)
    return {
        "staged": staged,
        "promoted": promoted,
        "retired": drop(promoted, secret, 0.0, 0.0, Counter()),
    }


async def serving(aiohttp_client: Any, dsn: str, root: Path, ring: Keyring | None) -> Any:
    keys = {"storage_signing_keys": ring.text()} if ring is not None else {}
    settings = users_settings(
        dsn, storage_dir=str(root), storage_signing_key=OLD_STORAGE_KEY, **keys
    )
    return await aiohttp_client(create_app(settings))


async def test_users_serves_the_key_directory_s_published_keys_as_its_jwk_set(
    aiohttp_client: Any, users_dsn: str, tmp_path: Path
) -> None:
    """JWT_KEYS_DIR: the JWK Set users serves is the keyring's published keys, judged by
    the app's clock (the database's); `make keys` wrote one, the current key."""
    assert keys_tool.main(["--dir", str(tmp_path)]) == 0
    settings = users_settings(users_dsn, jwt_keys_dir=str(tmp_path / "jwt"))
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/.well-known/jwks.json")
    assert resp.status == 200, await resp.text()
    kids = [key["kid"] for key in (await resp.json())["keys"]]
    assert kids == [read_keyring(tmp_path / "jwt" / RING).current.kid]


async def test_a_picture_url_stays_valid_after_a_rotation_until_expiry_not_after_retirement(
    aiohttp_client: Any, users_dsn: str, tmp_path: Path
) -> None:
    rings = storage_rings()
    before = await serving(aiohttp_client, users_dsn, tmp_path, None)
    storage = before.server.app[STORAGE]
    assert isinstance(storage, LocalStorage)
    key = "R" * 32 + ".png"
    await storage.put(key, png(), "image/png")
    old_url = await storage.url(key)  # signed by the single key, now k0
    assert "&kid=k0&" in old_url
    expires = int(time.time()) + 600
    no_kid = f"/v1/pictures/{key}?expires={expires}&sig={storage.sign(key, expires)}"
    past = int(time.time()) - 1
    expired = f"/v1/pictures/{key}?expires={past}&kid=k0&sig={storage.sign(key, past)}"
    assert (await before.get(old_url)).status == 200
    assert (await before.get(no_kid)).status == 200  # a URL from before keyrings

    staged = await serving(aiohttp_client, users_dsn, tmp_path, rings["staged"])
    assert "&kid=k0&" in await staged.server.app[STORAGE].url(key)  # staged: not signing

    promoted = await serving(aiohttp_client, users_dsn, tmp_path, rings["promoted"])
    new_url = await promoted.server.app[STORAGE].url(key)
    assert "&kid=k1&" in new_url
    for url in (old_url, no_kid, new_url):
        assert (await promoted.get(url)).status == 200, url
    refused = await promoted.get(expired)  # the previous key keeps no URL past its expiry
    assert refused.status == 403
    assert refused.content_type == "application/problem+json"
    assert (await staged.get(new_url)).status == 200  # a replica not yet promoted accepts k1

    retired = await serving(aiohttp_client, users_dsn, tmp_path, rings["retired"])
    for url in (old_url, no_kid):
        gone = await retired.get(url)
        assert gone.status == 403, url
        assert gone.content_type == "application/problem+json"
        assert "sig=" not in await gone.text()  # no secret in an error body
    assert (await retired.get(new_url)).status == 200
    unknown = new_url.replace("&kid=k1&", "&kid=k9&")
    assert (await retired.get(unknown)).status == 403
    tricky = new_url.replace("&kid=k1&", "&kid=..%2Fk1&")
    malformed = await retired.get(tricky)
    assert malformed.status == 400
    assert malformed.content_type == "application/problem+json"


async def test_a_mail_link_works_after_every_secret_is_rotated(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink, tmp_path: Path
) -> None:
    before = await aiohttp_client(create_app(mailing_settings(users_dsn, sink.port)))
    email = f"u{uuid.uuid4().hex[:12]}@fixup.test"
    body = {
        "email": email,
        "password": "correct horse",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone_number": "+44 20 7946 0000",
        "role": "CUSTOMER",
    }
    assert (await before.post("/v1/auth/register", json=body)).status == 201
    token = token_in(await mail_to(sink, email))
    encryption = SECRETS["encryption"]
    ring = promote(stage(Keyring.single(A), encryption, 0.0), encryption, 0.0, 0.0)
    rotated = mailing_settings(
        users_dsn,
        sink.port,
        storage_dir=str(tmp_path),
        storage_signing_keys=storage_rings()["retired"].text(),
        encryption_keys=drop(ring, encryption, 0.0, 0.0, Counter()).text(),
    )
    after = await aiohttp_client(create_app(rotated))
    resp = await after.post("/v1/auth/verify", json={"token": token})
    assert resp.status == 204, await resp.text()


async def providers(dsn: str, count: int) -> list[uuid.UUID]:
    """`count` providers whose personal id numbers were sealed under the old key A: a
    third before keyrings (no key id), the rest under k0; the only sealed values of the database
    (the test's own, but under mutmut a kept one holds an earlier session's rows:
    tools/checks/mutant_databases.py), since the rotation job reads the whole table."""
    old = FieldCipher(Keyring.single(A))
    ids = [await make_user(dsn, Role.PROVIDER) for _ in range(count)]
    async with pg.connected(dsn) as conn:
        for table, _ in SEALED:  # every sealed column the job reads: no other test's rows
            await conn.execute(f"DELETE FROM {table} WHERE NOT user_id = ANY($1)", ids)
        for n, user_id in enumerate(ids):
            plain = f"ID{n:06d}"
            if n % 3 == 0:
                nonce = os.urandom(12)
                sealed = nonce + AESGCM(A).encrypt(nonce, plain.encode(), user_id.bytes)
            else:
                sealed = old.encrypt(plain, associated=user_id.bytes)
            await conn.execute(
                "INSERT INTO provider_details (user_id, personal_id_encrypted, personal_id_last4)"
                " VALUES ($1, $2, $3)",
                user_id,
                sealed,
                plain[-4:],
            )
    return ids


async def on_key(dsn: str, kid: str) -> int:
    count: int = await pg.fetchval(
        dsn,
        "SELECT count(*) FROM provider_details"
        " WHERE substring(personal_id_encrypted FROM 1 FOR $1) = $2",
        len(prefix(kid)),
        prefix(kid),
    )
    return count


async def stored(dsn: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, bytes]:
    rows = await pg.fetch(
        dsn,
        "SELECT user_id, personal_id_encrypted FROM provider_details"
        " WHERE user_id = ANY($1::uuid[])",
        ids,
    )
    return {row["user_id"]: bytes(row["personal_id_encrypted"]) for row in rows}


def all_readable(cipher: FieldCipher, ids: list[uuid.UUID], values: dict[uuid.UUID, bytes]) -> None:
    assert sorted(values) == sorted(ids)  # no value lost
    for n, user_id in enumerate(ids):
        assert cipher.decrypt(values[user_id], associated=user_id.bytes) == f"ID{n:06d}"


async def test_reencrypt_stopped_half_way_resumes_and_a_second_run_changes_nothing(
    migrated_db: Callable[[str], str], tmp_path: Path
) -> None:
    dsn = migrated_db("users")  # its own database: the job reads the whole table
    ids = await providers(dsn, COUNT)
    encryption = SECRETS["encryption"]
    ring = promote(stage(Keyring.single(A), encryption, 0.0), encryption, 0.0, 0.0)
    ring = Keyring(tuple(k if k.kid != "k1" else symmetric("k1", B) for k in ring.keys))
    cipher = FieldCipher(ring)  # what the promoted service holds: k1 current, k0 retired
    assert envelope(dsn, ring) == COUNT // 3  # the values sealed before keyrings, migrated

    assert reencrypt(dsn, cipher, batch=7, max_batches=3) == 21  # stopped after 3 batches
    values = await stored(dsn, ids)
    all_readable(cipher, ids, values)
    assert Counter(sealed_kid(v) or "k0" for v in values.values()) == {"k1": 21, "k0": COUNT - 21}

    ring_file = tmp_path / "encryption.keys"
    write_keyring(ring_file, ring)
    env = {**os.environ, "USERS_DATABASE_URL": dsn, "ENCRYPTION_KEYS_FILE": str(ring_file)}
    command = [sys.executable, "-m", "tools.secrets.rotate", "encryption", "reencrypt"]
    command += ["--batch", "1"]
    job = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, env=env, stdout=PIPE, stderr=PIPE
    )
    try:
        # kill it once it committed a batch of its own; bounded by its start-up (imports)
        deadline = time.monotonic() + scaled(60)
        while time.monotonic() < deadline and job.returncode is None:
            if await on_key(dsn, "k1") > 21:
                break
            await asyncio.sleep(0.005)  # the poll's period, not a synchronisation
    finally:
        if job.returncode is None:
            job.kill()  # SIGKILL: no handler, no clean-up, mid-batch or between two
        await asyncio.wait_for(job.wait(), 30)
    values = await stored(dsn, ids)
    all_readable(cipher, ids, values)  # whatever batch it died in: every value opens
    moved = Counter(sealed_kid(v) or "k0" for v in values.values())["k1"]
    assert job.stderr is not None
    said = (await job.stderr.read()).decode()[-2000:]
    assert moved > 21, f"the job moved nothing of its own (exit {job.returncode}): {said}"

    resumed = await asyncio.create_subprocess_exec(
        *command[:-1], "50", cwd=ROOT, env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(resumed.communicate(), 120)
    assert resumed.returncode == 0, err
    assert out.decode() == f"re-encrypted {COUNT - moved} values under k1\n"
    values = await stored(dsn, ids)
    all_readable(cipher, ids, values)
    assert {sealed_kid(v) for v in values.values()} == {"k1"}
    assert reencrypt(dsn, cipher, batch=50, max_batches=None) == 0  # idempotent
    assert await stored(dsn, ids) == values  # not one byte changed
    retired = FieldCipher(drop(ring, encryption, 0.0, 0.0, counts(dsn)))
    all_readable(retired, ids, values)  # k0 may go now: nothing needs it


async def test_the_files_and_values_of_earlier_versions_migrate_and_read_back(
    migrated_db: Callable[[str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key directory (keys.json + PEM files), a `kid:state:base64` ring and personal id
    numbers sealed in today's envelope and before keyrings (no key id), as earlier versions
    wrote them: `make rotate step=migrate` converts each, twice changes nothing, and the
    service's settings read them all back."""
    dsn = migrated_db("users")
    ids = await providers(dsn, 9)  # 3 of them sealed before keyrings
    ring_file, jwt_dir = tmp_path / "encryption.keys", tmp_path / "jwt"
    ring_file.write_text(f"k0:current:{base64.b64encode(A).decode()}\n")
    jwt_dir.mkdir()
    private_pem, public_pem = generate_keypair()
    kid = key_id(load_public_key(public_pem))
    (jwt_dir / f"{kid}.pem").write_text(private_pem)
    (jwt_dir / f"{kid}.pub.pem").write_text(public_pem)
    row = {"kid": kid, "state": "signing", "created_at": 1.0, "retired_at": None}
    (jwt_dir / "keys.json").write_text(json.dumps({"keys": [row]}))
    monkeypatch.chdir(tmp_path)  # no .env
    for name, value in (("USERS_DATABASE_URL", dsn), ("ENCRYPTION_KEYS_FILE", str(ring_file))):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("USERS_JWT_KEYS_DIR", str(jwt_dir))
    for _ in range(2):  # the second run finds nothing to do
        assert rotate.main(["jwt", "migrate"]) == 0
        assert rotate.main(["encryption", "migrate"]) == 0
    assert sorted(p.name for p in jwt_dir.iterdir()) == ["keyring.json"]
    settings = load_settings(UsersSettings, "users")
    signing, _ = signing_keys(settings, time.time)
    assert signing is not None
    assert signing.signing_key()[0] == kid  # the same key signs: nobody logged out
    ring = settings.encryption_keyring()
    assert ring is not None
    values = await stored(dsn, ids)
    all_readable(FieldCipher(ring), ids, values)
    assert {sealed_kid(v) for v in values.values()} == {"k0"}
