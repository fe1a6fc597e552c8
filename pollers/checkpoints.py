"""Stream checkpoints in Redis: where each (mapping, shard) resumes after a restart.

The value is the last sequence number whose record (and every one before it) is done,
or SHARD_END once a closed shard is fully processed (its children may start then). A
restart reads it and continues AFTER_SEQUENCE_NUMBER, so nothing is skipped and a
crash only repeats work (at-least-once, as Lambda).

A write succeeds only while the writer still holds the shard's live lease (one Lua
step), so a process that lost its lease can never move the checkpoint of a shard that
another process is already working.
"""

from __future__ import annotations

import time

import redis.asyncio as aredis

from broker.keys import Keys
from pollers.leases import _NOW
from pollers.stream_policy import SHARD_END

__all__ = ["SHARD_END", "Checkpoints"]

# KEYS: stream_leases, stream_lease_owners, stream_checkpoints. ARGV: shard, owner, value.
WRITE = _NOW + """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] or not score or tonumber(score) <= now then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 1
"""


class Checkpoints:
    def __init__(self, client: aredis.Redis, keys: Keys, mapping: str, owner: str) -> None:
        self.redis = client
        self.owner = owner
        self.key = keys.stream_checkpoints(mapping)
        self.inflight_key = keys.stream_inflight(mapping)
        self.lease_keys = [keys.stream_leases(mapping), keys.stream_lease_owners(mapping)]
        self._write = client.register_script(WRITE)

    async def get(self, shard: str) -> str | None:
        raw = await self.redis.hget(self.key, shard)
        return raw.decode() if isinstance(raw, bytes) else raw

    async def all(self) -> dict[str, str]:
        raw = await self.redis.hgetall(self.key)
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def write(self, shard: str, value: str) -> bool:
        """Store `value` if we still hold the shard's live lease; False means: stop working it."""
        return bool(await self._write(keys=[*self.lease_keys, self.key], args=[shard, self.owner, value]))

    async def mark_inflight(self, shard: str, until_s: float) -> None:
        """Record that a batch of `shard` may run in a worker until `until_s` (epoch s), so a
        process taking the shard over after our crash waits for it instead of overlapping."""
        await self.redis.hset(self.inflight_key, shard, int(until_s * 1000))

    async def clear_inflight(self, shard: str) -> None:
        await self.redis.hdel(self.inflight_key, shard)

    async def inflight_wait_s(self, shard: str) -> float:
        """How long a new owner must wait for a batch a previous owner may have left running."""
        raw = await self.redis.hget(self.inflight_key, shard)
        return max(0.0, int(raw) / 1000 - time.time()) if raw else 0.0
