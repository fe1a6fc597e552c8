"""Shard leases and owner-checked checkpoints against a real redis-server."""

from __future__ import annotations

import asyncio

import redis.asyncio as aredis

from broker.keys import Keys
from pollers.checkpoints import Checkpoints
from pollers.leases import ShardLeases
from pollers.stream_policy import SHARD_END


async def _pair(redis_url: str, prefix: str, lease_s: float = 0.3) -> tuple[aredis.Redis, ShardLeases, ShardLeases, Checkpoints, Checkpoints]:
    client = aredis.Redis.from_url(redis_url)
    keys = Keys(prefix)
    a = ShardLeases(client, keys, "m1", "A", lease_s)
    b = ShardLeases(client, keys, "m1", "B", lease_s)
    return client, a, b, Checkpoints(client, keys, "m1", "A"), Checkpoints(client, keys, "m1", "B")


async def test_one_holder_at_a_time_until_expiry(redis_url: str, em_prefix: str) -> None:
    client, a, b, ca, cb = await _pair(redis_url, em_prefix)
    assert await a.acquire("s0")
    assert not await b.acquire("s0")
    assert await a.acquire("s0")  # re-acquiring our own lease renews it
    assert await ca.write("s0", "5") and not await cb.write("s0", "9")
    assert await ca.get("s0") == "5"
    await asyncio.sleep(0.4)  # A stopped heartbeating: the lease lapses
    assert not await ca.write("s0", "6"), "an expired lease must not move the checkpoint"
    assert await b.acquire("s0")
    beat = await a.heartbeat(["s0"])
    assert beat.renewed == {"s0": False}, "A lost the shard to B"
    assert await cb.write("s0", SHARD_END)
    assert await cb.all() == {"s0": SHARD_END}
    await client.aclose()


async def test_heartbeat_renews_and_counts_live_owners(redis_url: str, em_prefix: str) -> None:
    client, a, b, _, _ = await _pair(redis_url, em_prefix)
    assert await a.acquire("s0")
    for _ in range(4):
        beat = await a.heartbeat(["s0"])
        assert beat.renewed == {"s0": True}
        await asyncio.sleep(0.15)
    assert not await b.acquire("s0"), "renewed past its first deadline"
    assert (await b.heartbeat([])).live_owners == 2
    await a.leave()
    assert (await b.heartbeat([])).live_owners == 1
    await asyncio.sleep(0.4)
    assert (await a.heartbeat([])).live_owners == 1, "B's heartbeat lapsed"
    await client.aclose()


async def test_expired_but_untaken_lease_is_still_ours(redis_url: str, em_prefix: str) -> None:
    client, a, _, ca, _ = await _pair(redis_url, em_prefix)
    assert await a.acquire("s0")
    await asyncio.sleep(0.4)
    assert (await a.heartbeat(["s0"])).renewed == {"s0": True}
    assert await ca.write("s0", "7")
    await client.aclose()


async def test_release_only_own_leases(redis_url: str, em_prefix: str) -> None:
    client, a, b, _, _ = await _pair(redis_url, em_prefix, lease_s=30)
    assert await a.acquire("s0") and await b.acquire("s1")
    assert await a.release(["s0", "s1"]) == 1
    assert await b.acquire("s0")
    holders = await a.holders()
    assert {s: o for s, (o, _) in holders.items()} == {"s0": "B", "s1": "B"}
    await client.aclose()


async def test_inflight_marker_makes_a_new_owner_wait(redis_url: str, em_prefix: str) -> None:
    import time

    client, _, _, ca, cb = await _pair(redis_url, em_prefix)
    await ca.mark_inflight("s0", time.time() + 1.0)
    assert 0.5 < await cb.inflight_wait_s("s0") <= 1.0
    await ca.clear_inflight("s0")
    assert await cb.inflight_wait_s("s0") == 0.0
    await client.aclose()
