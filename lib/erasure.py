"""The erasure of a person in every service (ADR 0060; docs/operations.md "Data retention").

The LEDGER is one object per erasure in the object storage the deployment already has
(`erasures/<ledger time>-<user id>.json` under STORAGE_DIR, or in S3_BUCKET): outside every
database, so no restore rewinds it, and naming nobody (a user id and a time). DELETE
/v1/users/{id} writes the entry before it changes anything (no entry: 503, nothing
changed), so every acknowledged erasure is in the ledger.

Each service holding rows about people runs an `ErasureConsumer` (a `lib.relay.Relay`):
a round lists the ledger from ERASURE_MARGIN before the newest entry this database applied
(`erased_users`), applies every entry not found there and records it in the same
transaction. A service that was down catches up when it starts; a database restored to a
time before an erasure has lost that row (and its newest entry moved back with it), so the
next round applies the erasure again. A round reads the entries of the margin (and the new
ones), not the whole ledger: one LIST request per 1,000 of them.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel, Field, SecretStr

from lib.db.pool import Database
from lib.db.scope import enter_scope, exit_scope
from lib.http.keys import DB
from lib.logging import get_logger
from lib.relay import Relay, Round, running
from lib.storage.local import write_atomically
from lib.storage.s3 import S3Storage

log = get_logger("lib.erasure")
PREFIX = "erasures/"
TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"  # fixed width, UTC: keys sort as their times do
UUID = r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}"
KEY = re.compile(rf"^erasures/(\d{{8}}T\d{{6}}\.\d{{6}}Z)-({UUID})\.json\Z")


class StorageSettings(BaseModel):
    """Where objects are stored: a local directory, or an S3-compatible bucket when
    S3_BUCKET is set (users' pictures; every service's erasure ledger)."""

    storage_dir: str = "var/storage"
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr = SecretStr("")


class ErasureSettings(StorageSettings):
    """The erasure consumer of a service holding rows about people."""

    erasure_interval: float = Field(
        5.0, gt=0, description="Seconds between two reads of the erasure ledger."
    )
    erasure_margin: float = Field(
        600.0,
        gt=0,
        description="Seconds before its newest applied entry a round lists the ledger from: "
        "more than the clocks of two users processes may differ.",
    )
    erasure_batch: int = Field(50, ge=1, description="Erasures applied in one round.")


@dataclass(frozen=True, slots=True)
class Entry:
    """One erasure in the ledger: whom, and when it was written (the writer's clock)."""

    at: datetime
    user_id: uuid.UUID

    @property
    def key(self) -> str:
        return f"{PREFIX}{self.at.astimezone(UTC).strftime(TIME_FORMAT)}-{self.user_id}.json"

    def body(self) -> bytes:
        return json.dumps({"user_id": str(self.user_id), "at": self.at.isoformat()}).encode()


def entry_of(key: str) -> Entry | None:
    """The entry a ledger key names (None: not a ledger key)."""
    match = KEY.fullmatch(key)
    if match is None:
        return None
    at = datetime.strptime(match[1], TIME_FORMAT).replace(tzinfo=UTC)
    return Entry(at, uuid.UUID(match[2]))


def start_after(since: datetime | None) -> str:
    """The key every entry written at or after `since` sorts after."""
    return PREFIX if since is None else PREFIX + since.astimezone(UTC).strftime(TIME_FORMAT)


class Ledger(Protocol):
    async def record(self, entry: Entry) -> None: ...

    async def since(self, since: datetime | None) -> list[Entry]:
        """The entries written at or after `since` (None: all), oldest first."""


class LocalLedger:
    """The ledger as files of a directory (STORAGE_DIR/erasures): one machine only."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    async def record(self, entry: Entry) -> None:
        path = self.root / entry.key
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(write_atomically, path, entry.body())

    async def since(self, since: datetime | None) -> list[Entry]:
        first = start_after(since)
        folder = self.root / PREFIX

        def names() -> list[str]:
            return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

        keys = (PREFIX + name for name in await asyncio.to_thread(names))
        return [e for k in keys if k > first and (e := entry_of(k)) is not None]


class S3Ledger:
    """The ledger as objects of the bucket (prefix erasures/), listed from a key on."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client, self.bucket = client, bucket

    async def record(self, entry: Entry) -> None:
        await self.client.put_object(
            Bucket=self.bucket, Key=entry.key, Body=entry.body(), ContentType="application/json"
        )

    async def since(self, since: datetime | None) -> list[Entry]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=PREFIX, StartAfter=start_after(since)
        )
        out: list[Entry] = []
        async for page in pages:
            for obj in page.get("Contents", ()):
                if (entry := entry_of(obj["Key"])) is not None:
                    out.append(entry)
        return out


async def open_ledger(stack: AsyncExitStack, settings: StorageSettings) -> Ledger:
    """The ledger in the configured storage (S3 when S3_BUCKET is set), its client closed
    with `stack`."""
    if not settings.s3_bucket:
        return LocalLedger(settings.storage_dir)
    storage = await S3Storage.open(
        stack,
        bucket=settings.s3_bucket,
        ttl=1,  # no URL is ever made of a ledger entry
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key.get_secret_value(),
    )
    return S3Ledger(storage.client, storage.bucket)


class ErasureQueries(Protocol):
    """The generated module `services.<svc>.db.erasures` (sql/common/erasures.sql)."""

    async def newest_erasure(self, conn: Any) -> datetime | None: ...

    async def erased_among(self, conn: Any, *, user_ids: list[uuid.UUID]) -> list[uuid.UUID]: ...

    async def record_erasure(
        self, conn: Any, *, user_id: uuid.UUID, ledgered_at: datetime
    ) -> int: ...


# what a service does with a person's rows, in the transaction that records the erasure;
# it may return a step to run after the commit, with no connection held (an object deleted)
Then = Callable[[], Awaitable[None]]
Erase = Callable[[Any, uuid.UUID], Awaitable[Then | None]]
AppErase = Callable[[web.Application, Any, uuid.UUID], Awaitable[Then | None]]


class ErasureConsumer(Relay):
    name = "erasure_consumer"

    def __init__(
        self,
        db: Database,
        ledger: Ledger,
        queries: ErasureQueries,
        erase: Erase,
        *,
        interval: float,
        margin: float,
        batch: int,
    ) -> None:
        super().__init__(interval=interval, retry_max=interval, batch=batch)
        self.db, self.ledger, self.q, self.erase = db, ledger, queries, erase
        self.margin = timedelta(seconds=margin)

    async def pending(self) -> list[Entry]:
        """The ledger's entries this database has not applied, oldest first, once each."""
        async with self.db.acquire() as conn:
            newest = await self.q.newest_erasure(conn)
        entries = await self.ledger.since(None if newest is None else newest - self.margin)
        if not entries:
            return []
        async with self.db.acquire() as conn:
            done = set(await self.q.erased_among(conn, user_ids=[e.user_id for e in entries]))
        todo: dict[uuid.UUID, Entry] = {}
        for entry in entries:  # a person erased twice (a retried DELETE): the first entry
            if entry.user_id not in done:
                todo.setdefault(entry.user_id, entry)
        return list(todo.values())

    async def run_once(self) -> Round:
        scope = enter_scope()
        try:
            todo = (await self.pending())[: self.batch]
            for entry in todo:
                async with self.db.transaction() as conn:
                    # recorded first: a replica applying the same entry waits, then skips
                    if not await self.q.record_erasure(
                        conn, user_id=entry.user_id, ledgered_at=entry.at
                    ):
                        continue
                    then = await self.erase(conn, entry.user_id)
                if then is not None:
                    await then()
                log.info("erasure_applied", user_id=str(entry.user_id))
            return Round(len(todo), len(todo))
        finally:
            exit_scope(scope)


LEDGER: web.AppKey[Ledger] = web.AppKey("erasure_ledger")


def erasure_ctx(
    settings: ErasureSettings, queries: ErasureQueries, erase: AppErase, *, stop_within: float
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup context that opens the ledger (app[LEDGER]) and runs the service's
    erasure consumer while the app runs."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app[LEDGER] = ledger = await open_ledger(stack, settings)
            relay = ErasureConsumer(
                app[DB],
                ledger,
                queries,
                functools.partial(erase, app),
                interval=settings.erasure_interval,
                margin=settings.erasure_margin,
                batch=settings.erasure_batch,
            )
            async with running(relay, name="erasure-consumer", stop_within=stop_within):
                yield

    return ctx
