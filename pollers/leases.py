"""Shard leases: which pollers process may work which shard of a stream mapping.

One primitive (STYLE.md §5): a ZSET shard -> lease deadline (ms, Redis clock) plus a
HASH shard -> owner, changed only by the Lua scripts below so "is it free, then take
it" is one atomic, owner-checked step. Every live process also heartbeats itself into
the mapping's owners ZSET, which is how each one computes its fair share of shards.
Deadlines use Redis TIME, so hosts with skewed clocks still agree on expiry.

Keys (broker/keys.py): KEYS[1] stream_leases, KEYS[2] stream_lease_owners,
KEYS[3] stream_owners.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aredis

from broker.keys import Keys

_NOW = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# ARGV: shard, owner, lease_ms. Returns 1 if the caller now holds the lease.
ACQUIRE = _NOW + """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local holder = redis.call('HGET', KEYS[2], ARGV[1])
if score and tonumber(score) > now and holder and holder ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""

# ARGV: owner, lease_ms, shard... Heartbeats the owner, renews each shard it still holds.
# A lease that expired while nobody took it is still safely ours: nobody else can have
# run a batch of that shard, so an event-loop stall alone never stops a healthy worker.
# Returns {live owners, 1|0 per shard}.
HEARTBEAT = _NOW + """
local deadline = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[3], deadline, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local out = {redis.call('ZCARD', KEYS[3])}
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
    redis.call('ZADD', KEYS[1], deadline, ARGV[i])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""

# ARGV: owner, shard... Releases the shards the owner holds (graceful hand-over).
RELEASE = """
local n = 0
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    n = n + 1
  end
end
return n
"""

# ARGV: owner. Leaves the owners ZSET so the others' fair share grows at once.
LEAVE = "return redis.call('ZREM', KEYS[3], ARGV[1])"


@dataclass(frozen=True)
class Heartbeat:
    live_owners: int
    renewed: dict[str, bool]


class ShardLeases:
    """Lease operations for one mapping on behalf of one owner (a pollers process)."""

    def __init__(self, client: aredis.Redis, keys: Keys, mapping: str, owner: str, lease_s: float) -> None:
        self.redis = client
        self.owner = owner
        self.lease_ms = max(1, int(lease_s * 1000))
        self.keys = [keys.stream_leases(mapping), keys.stream_lease_owners(mapping), keys.stream_owners(mapping)]
        self._acquire = client.register_script(ACQUIRE)
        self._heartbeat = client.register_script(HEARTBEAT)
        self._release = client.register_script(RELEASE)
        self._leave = client.register_script(LEAVE)

    async def acquire(self, shard: str) -> bool:
        return bool(await self._acquire(keys=self.keys, args=[shard, self.owner, self.lease_ms]))

    async def heartbeat(self, shards: list[str]) -> Heartbeat:
        reply: list[Any] = await self._heartbeat(keys=self.keys, args=[self.owner, self.lease_ms, *shards])
        return Heartbeat(int(reply[0]), {s: bool(ok) for s, ok in zip(shards, reply[1:])})

    async def release(self, shards: list[str]) -> int:
        if not shards:
            return 0
        return int(await self._release(keys=self.keys, args=[self.owner, *shards]))

    async def leave(self) -> None:
        await self._leave(keys=self.keys, args=[self.owner])

    async def holders(self) -> dict[str, tuple[str, int]]:
        """shard -> (owner, deadline ms) as stored, expired ones included."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrange(self.keys[0], 0, -1, withscores=True)
            pipe.hgetall(self.keys[1])
            scores, owners = await pipe.execute()
        names = {_text(k): _text(v) for k, v in owners.items()}
        return {_text(s): (names.get(_text(s), ""), int(score)) for s, score in scores}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
