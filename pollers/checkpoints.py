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
from typing import Any, Callable

import redis.asyncio as aredis

from broker.keys import Keys
from pollers.leases import _NOW
from pollers.stream_policy import SHARD_END
from pollers.stream_window import WindowState, is_shard_field, start_field, window_field

__all__ = ["SHARD_END", "Checkpoints"]

# KEYS: stream_leases, stream_lease_owners, stream_checkpoints. ARGV: shard, owner, then
# field, value pairs (the shard's checkpoint, its window states, its resolved start; an
# empty value deletes the field), all written only by the live lease holder.
WRITE = _NOW + """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] or not score or tonumber(score) <= now then return 0 end
for i = 3, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[3], ARGV[i]) else redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
end
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
        """shard -> checkpoint (window and start fields left out)."""
        raw = await self.redis.hgetall(self.key)
        return {k.decode(): v.decode() for k, v in raw.items() if is_shard_field(k.decode())}

    async def saved(self, shard: str, lanes: int) -> tuple[float | None, list[WindowState]]:
        """The shard's resolved LATEST start (epoch s) and each lane's window state."""
        raw = await self.redis.hmget(self.key, [start_field(shard), *(window_field(shard, i) for i in range(lanes))])
        return (float(raw[0]) if raw[0] else None), [WindowState.loads(r) for r in raw[1:]]

    async def write(self, shard: str, value: str, extra: Callable[[Any], None] | None = None) -> bool:
        """Store checkpoint `value` if we still hold the shard's live lease; False means: stop working it."""
        return await self.write_fields(shard, {shard: value}, extra)

    async def write_fields(self, shard: str, fields: dict[str, str], extra: Callable[[Any], None] | None = None) -> bool:
        """Store `fields` ("" deletes one) in one owner-checked step; False: the lease is gone.

        `extra` queues more commands (metrics) on the same pipeline: one round trip per
        batch. EVAL, not EVALSHA, there: redis-py checks a pipeline's scripts with an
        extra SCRIPT EXISTS per execute, and Redis caches the compiled body anyway.
        """
        args = [shard, self.owner, *(x for pair in fields.items() for x in pair)]
        if extra is None:
            return bool(await self._write(keys=[*self.lease_keys, self.key], args=args))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.eval(WRITE, 3, *self.lease_keys, self.key, *args)
            extra(pipe)
            reply = await pipe.execute()
        return bool(reply[0])

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
