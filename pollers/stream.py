"""The shared poller for stream mappings (Kinesis, DynamoDB Streams).

Per mapping and pollers process: list the stream's shards (periodically, and at once
when a shard ends, so children of a split start promptly), hold leases on a fair share
of the startable ones, run a ShardWorker per leased shard, and heartbeat the leases.
A worker whose lease could not be renewed in time is cancelled before the lease can
expire, so no two processes ever run batches of one shard at the same time; a dead
process's leases expire after EVENTMILL_LEASE_SECONDS and the others take its shards.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from broker.mappings import EventSourceMapping
from broker.registry import Registry
from pollers.base import PollerContext
from pollers.checkpoints import Checkpoints
from pollers.filtering import FilterSet
from pollers.leases import ShardLeases
from pollers.stream_batch import BatchEnv
from pollers.stream_client import RawPageParserFactory
from pollers.stream_lane import wait_either
from pollers.stream_policy import SHARD_END, RetryPolicy, ShardInfo, fair_share, startable
from pollers.stream_shard import ShardWorker
from pollers.stream_source import StreamSource

log = logging.getLogger("eventmill.pollers.stream")

BALANCE_S = 0.5
SHARD_LIST_S = 2.0
DEFAULT_ROLE = "arn:aws:iam::123456789012:role/lambda-role"


@dataclass
class Held:
    """A shard this process works: its worker, task and local lease horizon."""

    worker: ShardWorker
    task: asyncio.Task[bool]
    stopping: asyncio.Event
    safe_until: float  # monotonic time after which the lease may have expired: stop before


class StreamPoller:
    """Base for pollers/kinesis.py and pollers/dynamodb.py; subclasses name their source."""

    service = ""
    source: StreamSource

    def make_source(self, client: Any, role: str) -> StreamSource:
        """The subclass's source over an open aiobotocore client for `service`."""
        raise NotImplementedError

    def __init__(self, ctx: PollerContext, mapping: EventSourceMapping) -> None:
        self.ctx = ctx
        self.mapping = mapping
        self.lease_s = ctx.settings.lease_s
        self.leases = ShardLeases(ctx.redis, ctx.keys, mapping.uuid, ctx.owner, self.lease_s)
        self.checkpoints = Checkpoints(ctx.redis, ctx.keys, mapping.uuid, ctx.owner)
        self.filters = FilterSet.parse(mapping.filter_criteria)
        self.policy = RetryPolicy(
            max_retry_attempts=mapping.maximum_retry_attempts,
            max_record_age_s=ctx.settings.scaled(mapping.maximum_record_age_s) if mapping.maximum_record_age_s >= 0 else -1,
            bisect=mapping.bisect_batch_on_function_error,
            time_scale=ctx.settings.time_scale,
        )
        self.held: dict[str, Held] = {}
        self.shards: list[ShardInfo] = []
        self.listed_at = 0.0
        self.live_owners = 1
        self.relist = asyncio.Event()
        self.timeout_s = 3.0

    async def run(self, stop: asyncio.Event) -> None:
        config = await Registry(self.ctx.redis, self.ctx.keys).find(self.mapping.function_name)
        role = config.role if config else DEFAULT_ROLE
        self.timeout_s = float(config.timeout_s) if config else 3.0
        async with self.ctx.client(self.service, parser_factory=RawPageParserFactory()) as client:
            self.source = self.make_source(client, role)
            beat = asyncio.create_task(self._heartbeat_loop(stop), name=f"esm:{self.mapping.uuid}:heartbeat")
            try:
                while not stop.is_set():
                    try:
                        await self._balance()
                    except Exception as exc:  # a source or Redis blip: keep the shards we have, try again
                        log.warning("mapping %s: balancing failed: %s", self.mapping.uuid, exc)
                    await wait_either(self.relist, stop, BALANCE_S)
            finally:
                for held in self.held.values():
                    held.stopping.set()
                await asyncio.gather(*(h.task for h in self.held.values()), return_exceptions=True)
                await self._reap()
                beat.cancel()
                await asyncio.gather(beat, return_exceptions=True)
                await self.leases.leave()

    async def _balance(self) -> None:
        await self._reap()
        if self.relist.is_set() or time.monotonic() - self.listed_at >= SHARD_LIST_S:
            self.relist.clear()
            self.shards = await self.source.shards()
            self.listed_at = time.monotonic()
            for info in self.shards:  # a worker learns that its shard was closed by a reshard
                if info.shard_id in self.held:
                    self.held[info.shard_id].worker.shard = info
        finished = {s for s, v in (await self.checkpoints.all()).items() if v == SHARD_END}
        active = startable(self.shards, finished)
        target = fair_share(len(active), self.live_owners)
        mine = [s for s, h in self.held.items() if not h.stopping.is_set()]
        if len(mine) > target and self.live_owners > 1:
            for shard in mine[target:]:
                self.held[shard].stopping.set()  # graceful: finish the in-flight batch, then release
            return
        holders = await self.leases.holders()
        now_ms = _redis_ms(await self.ctx.redis.time())
        by_id = {s.shard_id: s for s in self.shards}
        for shard in active:
            if len(mine) >= target:
                break
            if shard in self.held:
                continue
            holder = holders.get(shard)
            if holder and holder[0] != self.ctx.owner and holder[1] > now_ms:
                continue
            sent = time.monotonic()
            if not await self.leases.acquire(shard):
                continue
            checkpoint = await self.checkpoints.get(shard)
            if checkpoint == SHARD_END:
                await self.leases.release([shard])
                continue
            info = by_id[shard]
            listed = {s.shard_id for s in self.shards}
            # A child of a shard we processed starts at its beginning, whatever StartingPosition says.
            start = "TRIM_HORIZON" if any(p in listed for p in info.parents) else (self.mapping.starting_position or "LATEST")
            self._start(info, checkpoint, start, sent)
            mine.append(shard)

    def _start(self, info: ShardInfo, checkpoint: str | None, start: str, acquired_at: float) -> None:
        stopping = asyncio.Event()
        env = BatchEnv(
            ctx=self.ctx, mapping=self.mapping, shard_id=info.shard_id, stream_arn=self.mapping.event_source_arn,
            info_key=self.source.info_key, policy=self.policy, checkpoints=self.checkpoints,
            function_timeout_s=self.timeout_s, stopping=stopping,
        )
        worker = ShardWorker(env, self.source, info, checkpoint, start, self.filters)
        task = asyncio.create_task(worker.run(), name=f"esm:{self.mapping.uuid}:{info.shard_id}")
        task.add_done_callback(lambda _t: self.relist.set())
        self.held[info.shard_id] = Held(worker, task, stopping, acquired_at + self.lease_s * 0.75)
        log.info("mapping %s: working shard %s from %s", self.mapping.uuid, info.shard_id, checkpoint or start)

    async def _reap(self) -> None:
        """Forget finished workers and hand their leases back."""
        done = [s for s, h in self.held.items() if h.task.done()]
        for shard in done:
            held = self.held.pop(shard)
            exc = None if held.task.cancelled() else held.task.exception()
            if exc is not None:
                log.warning("mapping %s: shard %s stopped: %r", self.mapping.uuid, shard, exc)
            else:
                await self.checkpoints.clear_inflight(shard)
            await self.leases.release([shard])
            await self.ctx.redis.hdel(self.ctx.keys.stream_backlog(self.mapping.uuid), shard)
            scope = shard_scope(self.mapping.uuid, shard)
            await self.ctx.redis.delete(self.ctx.keys.metrics(scope))
            await self.ctx.redis.srem(self.ctx.keys.metric_scopes, scope)

    async def _heartbeat_loop(self, stop: asyncio.Event) -> None:
        interval = self.lease_s / 4
        while True:
            shards = [s for s, h in self.held.items() if not h.task.done()]
            sent = time.monotonic()
            try:
                beat = await asyncio.wait_for(self.leases.heartbeat(shards), timeout=self.lease_s / 2)
                self.live_owners = beat.live_owners
                for shard, ok in beat.renewed.items():
                    held = self.held.get(shard)
                    if held is None:
                        continue
                    if ok:
                        held.safe_until = sent + self.lease_s * 0.75
                    elif not held.task.done():
                        log.warning("mapping %s: lost the lease of shard %s; stopping it", self.mapping.uuid, shard)
                        held.task.cancel()
                await self._publish_backlog()
            except Exception as exc:
                log.warning("mapping %s: lease heartbeat failed: %s", self.mapping.uuid, exc)
            now = time.monotonic()
            for shard, held in list(self.held.items()):  # Redis unreachable: stop before the lease can lapse
                if now >= held.safe_until and not held.task.done():
                    log.warning("mapping %s: lease of shard %s not renewed in time; stopping it", self.mapping.uuid, shard)
                    held.task.cancel()
            await asyncio.sleep(interval)

    async def _publish_backlog(self) -> None:
        """Per-shard gauges (scope `shard:<mapping>/<shard>`: IteratorAge of the last batch,
        records read and not yet checkpointed, MillisBehindLatest of the last read) and the
        mapping's EstimatedBacklog summed over every process's shards."""
        keys = self.ctx.keys
        key = keys.stream_backlog(self.mapping.uuid)
        values = {s: h.worker.backlog for s, h in self.held.items()}
        async with self.ctx.redis.pipeline(transaction=False) as pipe:
            for shard, held in self.held.items():
                scope = shard_scope(self.mapping.uuid, shard)
                pipe.hset(keys.metrics(scope), mapping={
                    "ShardIteratorAge": round(held.worker.env.iterator_age_ms, 1),
                    "ShardBacklog": held.worker.backlog,
                    "ShardMillisBehindLatest": held.worker.behind_ms,
                })
                pipe.sadd(keys.metric_scopes, scope)
            if values:
                pipe.hset(key, mapping=values)
            pipe.hvals(key)
            reply = await pipe.execute()
        total = sum(int(v) for v in reply[-1])
        await self.ctx.redis.hset(self.ctx.keys.metrics(f"esm:{self.mapping.uuid}"), "EstimatedBacklog", total)


def shard_scope(mapping: str, shard: str) -> str:
    return f"shard:{mapping}/{shard}"


def _redis_ms(reply: Any) -> int:
    seconds, micros = reply
    return int(seconds) * 1000 + int(micros) // 1000
