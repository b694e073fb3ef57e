"""Putting the revocations back into a Redis that lost them (users owns the marker).

lib.auth.revocation reads the marker; ADR 0028 says why. A restore is three steps, so
that no revocation can slip between them unseen:
1. `begin` writes a field `restoring` = a token of this attempt into the hash;
2. the caller reads the record (every revocation younger than the longest token life)
   once no transaction is between writing its record and its COMMIT (users holds a lock
   that waits for them: their Redis copy is written in that span);
3. `finish`, one Lua script (atomic in Redis), writes each record the hash lacks (HSETNX:
   a field written since step 1 holds a later time), sets the marker `epoch` and removes
   `restoring`, but only while `restoring` is still this attempt's token. A loss after
   step 1 (flush, restart, eviction) took the token with it, another restore replaced
   it: `finish` answers False and the caller starts over.
A revocation is then either in the record read at step 2 (committed before it), or its
Redis copy was written after step 1: in the hash at step 3, or lost with the token.

`prune` drops the fields older than a cutoff (one script: a field rewritten meanwhile is
newer and stays), so the hash holds the revocations of the last token lifetime only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis

from lib.auth.revocation import MARKER, Revocations

RESTORING = "restoring"
TIMEOUT = 10.0  # s for one restore or prune call (thousands of fields: milliseconds)

FINISH = f"""
if redis.call('HGET', KEYS[1], '{RESTORING}') ~= ARGV[1] then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], '{MARKER}', ARGV[2])
redis.call('HDEL', KEYS[1], '{RESTORING}')
return 1
"""

PRUNE = f"""
local fields = redis.call('HGETALL', KEYS[1])
local dropped = 0
for i = 1, #fields, 2 do
  local name = fields[i]
  local kept = name == '{MARKER}' or name == '{RESTORING}'
  if not kept and tonumber(fields[i + 1]) < tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[1], name)
    dropped = dropped + 1
  end
end
return dropped
"""


class RevocationRestorer:
    """The marker's owner (the users service): check it, restore, audit, prune."""

    def __init__(self, revocations: Revocations) -> None:
        if revocations.client is None:
            raise ValueError("a restore needs Redis (REDIS_URL)")
        self.client: Redis = revocations.client
        self.key = revocations.hash_key

    async def marked(self) -> bool:
        """Whether the hash carries the marker (it holds every live revocation)."""
        return bool(await self._call(self.client.hexists(self.key, MARKER)))

    async def keep_alive(self, seconds: int) -> None:
        """The hash expires `seconds` after the owner's last round: a deployment gone (or a
        test's prefix) leaves nothing behind, and with users away that long every token
        it signed has expired anyway (a hash gone is a loss like any other: no marker)."""
        await self._call(self.client.expire(self.key, seconds))

    async def begin(self) -> str:
        token = uuid.uuid4().hex
        await self._call(self.client.hset(self.key, RESTORING, token))
        return token

    async def finish(self, token: str, records: Iterable[tuple[uuid.UUID, int]]) -> bool:
        """Write `records` (subject, not-before ms) the hash lacks and set the marker, if
        nothing happened to the hash since `begin` returned `token`."""
        pairs = [value for subject, ms in records for value in (str(subject), str(ms))]
        epoch = uuid.uuid4().hex
        done = await self._call(self.client.eval(FINISH, 1, self.key, token, epoch, *pairs))
        return bool(done)

    async def holds(self, subject: uuid.UUID, not_before: int) -> bool:
        """Whether the hash has `subject`'s revocation at `not_before` or later."""
        value = await self._call(self.client.hget(self.key, str(subject)))
        return value is not None and int(value) >= not_before

    async def unmark(self) -> None:
        """Remove the marker: every process asks the record until the next restore."""
        await self._call(self.client.hdel(self.key, MARKER))

    async def prune(self, cutoff_ms: int) -> int:
        """Drop the fields older than `cutoff_ms`; how many were."""
        return int(await self._call(self.client.eval(PRUNE, 1, self.key, str(cutoff_ms))))

    async def _call(self, call: Any) -> Any:
        async with asyncio.timeout(TIMEOUT):
            return await call
