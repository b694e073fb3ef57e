"""Users' marker on the run's shared Redis, for the default REVOCATION_PREFIX.

Many tests run a service that verifies tokens (chat, orders, catalog, departments) against
the run's shared Redis with no users app beside it. A revocations hash without users'
marker means "Redis lost the revocations" (ADR 0028): every verifier would ask users'
record, absent there, and answer 503. This stands in for users' keeper
(services/users/revocation_keeper.py) on that one key: it marks the hash intact every
`EVERY` seconds for the whole run (users apps of the run share the key and may set its
expiry, so the mark comes back within `EVERY` of it lapsing). Tests of the marker itself
use prefixes of their own, or Redis servers of their own."""

from __future__ import annotations

import contextlib
import threading

import redis

from lib.auth.revocation import HASH_NAME, MARKER
from lib.config import ServiceSettings

DEFAULT_KEY = f"{ServiceSettings.model_fields['revocation_prefix'].default}{HASH_NAME}"
EVERY = 1.0  # seconds: the verifiers' cache TTL, so a lapse is never longer than theirs


class RevocationsIntact:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=EVERY)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, name="revocations-intact", daemon=True)

    def run(self) -> None:
        while True:
            # HSETNX: a users keeper's own epoch stays as it is; the shared Redis is never
            # stopped, so a slow answer is only tried again
            with contextlib.suppress(redis.RedisError):
                self.client.hsetnx(DEFAULT_KEY, MARKER, "the test run")
            if self.done.wait(EVERY):
                return

    def __enter__(self) -> RevocationsIntact:
        self.client.hsetnx(DEFAULT_KEY, MARKER, "the test run")  # before any test runs
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(EVERY * 5)
        self.client.close()
