"""The users service's symmetric secrets rotated under the rotation drill's load (ADR 0036):
the picture-URL key (stage, promote, drop) and ENCRYPTION_KEY (stage, promote,
reencrypt, drop), each step by tools/secrets/rotate.py's own functions on the keyring
files users reads, then a rollout of users' replicas behind NGINX (one at a time, as
`kubectl rollout restart`). Meanwhile `Checks` keeps asking: a picture URL signed before
the rotation (200 until it expires), a fresh one after each step, a provider registration
(its personal id number sealed under the current key), and every stored personal id
number opened with the ring in effect. Every answer counted in `outcomes`.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
from cryptography.exceptions import InvalidTag

from lib.crypto import FieldCipher
from lib.keyring import Keyring, read_keyring, write_keyring
from tests import pg
from tests.e2e.gateway_stack import wait_until
from tests.pictures_support import png
from tests.reliability.drill import Drill
from tests.reliability.stack import ENCRYPTION_KEY, PASSWORD
from tools.local.service_process import PROCESS_MARGIN
from tools.secrets import rotate as steps
from tools.secrets import sealed

STORAGE_KEY = b"the drill's picture key before keyrings"
# STORAGE_URL_TTL of the drill: long enough that a URL signed just before `promote` is
# asked again after the rollout, short enough that `retire` waits little for its expiry
PICTURE_TTL = 20


class Rings:
    """The two keyring files users reads (STORAGE_SIGNING_KEYS_FILE, ENCRYPTION_KEYS_FILE),
    started from the single keys (`k0`), as the first `stage` would."""

    def __init__(self, directory: Path) -> None:
        self.files = {
            "storage": directory / "storage.keys",
            "encryption": directory / "encryption.keys",
        }
        self.write("storage", Keyring.single(STORAGE_KEY))
        self.write("encryption", Keyring.single(base64.b64decode(ENCRYPTION_KEY)))

    def env(self) -> dict[str, str]:
        return {
            "STORAGE_SIGNING_KEYS_FILE": str(self.files["storage"]),
            "ENCRYPTION_KEYS_FILE": str(self.files["encryption"]),
            "STORAGE_URL_TTL": str(PICTURE_TTL),
        }

    def read(self, name: str) -> Keyring:
        return read_keyring(self.files[name], **steps.SECRETS[name].sizes())

    def write(self, name: str, ring: Keyring) -> None:
        write_keyring(self.files[name], ring)


class Checks:
    """A provider's picture and sign-up, asked again and again through the gateway."""

    def __init__(self, drill: Drill, http: aiohttp.ClientSession, users_dsn: str) -> None:
        self.drill, self.http, self.dsn = drill, http, users_dsn
        self.outcomes: Counter[str] = Counter()
        self.token = ""
        self.old_url = ""  # signed just before the promotion
        self.providers = 0

    def count(self, what: str, status: int, expect: int) -> bool:
        self.outcomes["ok" if status == expect else f"{what} {status}"] += 1
        return status == expect

    async def register(self, verified: bool = False) -> str:
        """A new PROVIDER (its personal id number sealed); its access token. `verified`:
        its email marked verified in the database, as its mail link would (a picture
        upload asks for it)."""
        users = self.drill.api("users")
        email = f"provider{uuid.uuid4().hex[:12]}@fixup.test"
        account = {"email": email, "password": PASSWORD, "first_name": "Grace",
                   "last_name": "Hopper", "phone_number": "+1 555 0101", "role": "PROVIDER",
                   "personal_id_number": f"PID-{uuid.uuid4().hex[:12]}"}  # fmt: skip
        async with self.http.post(f"{users}/v1/auth/register", json=account) as resp:
            self.count("POST register", resp.status, 201)
        if verified:
            await pg.execute(self.dsn, "UPDATE users SET verified = true WHERE email = $1", email)
        login = {"email": email, "password": PASSWORD}
        async with self.http.post(f"{users}/v1/auth/login", json=login) as resp:
            body = await resp.json(content_type=None)
            self.count("POST login", resp.status, 200)
        self.providers += 1
        return str(body["data"]["access_token"]) if resp.status == 200 else ""

    async def picture_url(self) -> str:
        """A picture URL signed now (users' current picture key)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.http.get(f"{self.drill.api('users')}/v1/users/me", headers=headers) as r:
            body = await r.json(content_type=None)
            self.count("GET me", r.status, 200)
        return str(body["data"]["picture_url"]) if r.status == 200 else ""

    async def start(self) -> None:
        self.token = await self.register(verified=True)
        form = aiohttp.FormData()
        form.add_field("image", png(), filename="p.png", content_type="image/png")
        headers = {"Authorization": f"Bearer {self.token}"}
        url = f"{self.drill.api('users')}/v1/users/me/picture"
        async with self.http.put(url, data=form, headers=headers) as resp:
            self.count("PUT picture", resp.status, 204)

    async def old_url_opens(self) -> None:
        """The URL signed before the promotion, asked after its rollout: 200 while it lives.
        A 403 past its `expires` (the service and this process read the same host clock;
        a 1 s leeway) is its expiry, not a refusal: then the rollout outlasted the URL."""
        status = await self.fetch(self.old_url)
        expires = int(parse_qs(urlsplit(self.old_url).query)["expires"][0])
        if status == 403 and time.time() > expires - 1:
            return
        self.count("GET old picture", status, 200)

    async def fetch(self, url: str) -> int:
        async with self.http.get(f"{self.drill.api('users')}{url}") as resp:
            await resp.read()
            return resp.status

    async def step(self, ring: Keyring) -> None:
        """After a step's rollout: a fresh picture URL opens, the old one too until it
        expires, a provider signs up, every stored personal id number opens with `ring`."""
        self.count("GET fresh picture", await self.fetch(await self.picture_url()), 200)
        await self.register()
        self.count("stored personal id numbers opened", await self.all_open(ring), 0)

    async def all_open(self, ring: Keyring) -> int:
        """How many stored personal id numbers `ring` cannot open (0: all)."""
        cipher = FieldCipher(ring)
        rows = await pg.fetch(
            self.dsn, "SELECT user_id, personal_id_encrypted FROM provider_details"
        )
        closed = 0
        for row in rows:
            try:
                cipher.decrypt(bytes(row["personal_id_encrypted"]), associated=row["user_id"].bytes)
            except (InvalidTag, KeyError, ValueError):  # not this ring's
                closed += 1
        return closed

    async def old_url_expired(self) -> None:
        """The URL signed before the promotion: 200 until its expiry, then 403 (expired,
        not refused by the rotation); polled for at most its life."""
        seen: list[int] = []

        async def expired() -> bool:
            seen.append(await self.fetch(self.old_url))
            return seen[-1] == 403

        try:
            await wait_until(expired, "the old URL expires", PICTURE_TTL + PROCESS_MARGIN)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: answers {Counter(seen)}; {self.outcomes}") from None
        # before its expiry every answer was 200: the rotation refused it never
        for status in seen[:-1]:
            self.count("GET old picture", status, 200)


def apply(rings: Rings, names: tuple[str, ...], step: str, used: Counter[str]) -> None:
    """One step of tools/secrets/rotate.py on each named ring file (neither secret has a
    time gate: users reads them at start, and each step is followed by a rollout)."""
    for name in names:
        secret, ring, now = steps.SECRETS[name], rings.read(name), time.time()
        if step == "stage":
            rings.write(name, steps.stage(ring, secret, now))
        elif step == "promote":
            rings.write(name, steps.promote(ring, secret, now, 0.0))
        else:
            # stored values name encryption keys only (picture URLs are not stored)
            kept = used if secret.stored else Counter[str]()
            rings.write(name, steps.drop(ring, secret, now, 0.0, kept))


async def rotate(drill: Drill, rings: Rings, checks: Checks, names: tuple[str, ...]) -> int:
    """The runbook on `names` ("storage", "encryption"), each step followed by a rollout of
    users: stage, promote (a picture URL signed just before still opens after it),
    reencrypt, drop once that URL expired (ADR 0036: STORAGE_URL_TTL after the
    promotion). How many values the re-encryption re-sealed."""
    apply(rings, names, "stage", Counter())
    await drill.rollout("users")
    await checks.step(rings.read("encryption"))
    checks.old_url = await checks.picture_url()  # under the key being replaced
    apply(rings, names, "promote", Counter())
    await drill.rollout("users")
    await checks.old_url_opens()
    await checks.step(rings.read("encryption"))
    moved = 0
    if "encryption" in names:
        cipher = FieldCipher(rings.read("encryption"))
        moved = await asyncio.to_thread(
            sealed.reencrypt, checks.dsn, cipher, batch=50, max_batches=None
        )
        await checks.step(rings.read("encryption"))
    if "storage" in names:
        await checks.old_url_expired()
    used = await asyncio.to_thread(sealed.counts, checks.dsn)
    apply(rings, names, "drop", used)
    await drill.rollout("users")
    await checks.step(rings.read("encryption"))
    return moved
