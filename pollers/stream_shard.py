"""Work one leased shard: read it in order, batch per lane, checkpoint what is done.

A reader fetches records (GetRecords), drops the ones FilterCriteria rejects (they
count as done: the iterator moves past them, SEMANTICS §25) and routes the rest to one
of ParallelizationFactor lanes by partition key, so each key's records stay in order
while lanes run batches concurrently (§29). Each lane has at most one batch in flight.
The checkpoint is the highest sequence number below which everything is done
(`Progress`), written owner-checked after every batch together with the lanes' window
states; a closed shard, once fully done, is checkpointed as SHARD_END so its children
can start.

StartingPosition LATEST is a moving target: resolved again after a restart that came
before the first checkpoint, it would skip whatever was put in between. So the first
owner stores when it resolved LATEST (`<shard>/start`, less LATEST_MARGIN_S for clock
skew between us and the source's arrival stamps) before reading, and a later owner
without a checkpoint starts AT_TIMESTAMP there instead (DynamoDB Streams has no
AT_TIMESTAMP: it reads from TRIM_HORIZON and skips records that arrived before).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Sequence

from pollers.filtering import FilterSet
from pollers.stream_batch import Abandoned, BatchEnv
from pollers.stream_lane import MAX_PAYLOAD_BYTES, Lane, wait_either
from pollers.stream_policy import SHARD_END, Progress, ShardInfo, idle_poll_s, lane_for
from pollers.stream_records import StreamRecord
from pollers.stream_source import StreamSource
from pollers.stream_window import start_field, window_field

log = logging.getLogger("eventmill.pollers.stream")

MAX_GETRECORDS = 10_000
READ_AHEAD = 2_000  # records buffered per shard at least: big reads cost the source less per record
BATCHES_AHEAD = 4  # ... and this many batches per lane, so a read never leaves a lane waiting
MAX_BUFFER = 20_000
LATEST_MARGIN_S = 0.5


class LeaseLost(Exception):
    """A checkpoint write found the lease gone: stop at once, the shard is someone else's."""


class ShardWorker:
    """One shard of one mapping, for as long as this process holds its lease."""

    def __init__(self, env: BatchEnv, source: StreamSource, shard: ShardInfo, checkpoint: str | None, start: str, filters: FilterSet) -> None:
        self.env = env
        self.source = source
        self.shard = shard
        self.start = start
        self.filters = filters
        self.written = checkpoint
        self.last_read: int | None = int(checkpoint) if checkpoint else None
        self.not_before: float | None = None  # skip records that arrived earlier (restart from a LATEST start)
        self.progress = Progress()
        self.lock = asyncio.Lock()
        self.space = asyncio.Event()
        self.reading = True
        self.ended = False
        self.behind_ms = 0
        mapping = env.mapping
        self.lanes = [Lane(self, i) for i in range(max(1, mapping.parallelization_factor))]
        batch = max(1, mapping.batch_size)
        self.max_buffer = max(batch * 2, min(max(batch * len(self.lanes) * BATCHES_AHEAD, READ_AHEAD), MAX_BUFFER))
        # Read again only once half the buffer is free, so reads stay large (one GetRecords
        # per many batches, not one per batch) while the lanes still never run dry.
        self.min_read = min(MAX_GETRECORDS, max(1, self.max_buffer // 2))
        self.max_bytes = MAX_PAYLOAD_BYTES * (2 * len(self.lanes) + 1)
        self.buffered_bytes = 0  # record bytes handed to lanes and not done yet

    @property
    def backlog(self) -> int:
        return len(self.progress)

    async def run(self) -> bool:
        """Returns True when the shard reached SHARD_END (fully processed)."""
        await self._resume()
        wait = await self.env.checkpoints.inflight_wait_s(self.shard.shard_id)
        if wait > 0:  # a previous owner died mid-batch: never overlap its batch (ARCHITECTURE: leases)
            log.info("shard %s: waiting %.1f s for a batch left running by a previous owner", self.shard.shard_id, wait)
            await asyncio.sleep(wait)
        abandoned = False
        try:
            async with asyncio.TaskGroup() as group:
                for lane in self.lanes:
                    group.create_task(lane.run())
                group.create_task(self._read())
        except* Abandoned:
            abandoned = True  # asked to stop while a batch was blocked: the next owner retries it
        if abandoned:
            return False
        if self.ended and not len(self.progress) and not self.env.stopping.is_set():
            shard = self.shard.shard_id
            done = {shard: SHARD_END, start_field(shard): "", **{window_field(shard, lane.index): "" for lane in self.lanes}}
            if not await self.env.checkpoints.write_fields(shard, done):
                raise LeaseLost(shard)
            return True
        return False

    async def _resume(self) -> None:
        """Restore the lanes' window states and pin (or reuse) where LATEST resolved."""
        shard = self.shard.shard_id
        pinned, windows = await self.env.checkpoints.saved(shard, len(self.lanes))
        for lane, saved in zip(self.lanes, windows):
            if lane.tumbling_s:
                lane.win = saved
        if self.last_read is not None or self.start != "LATEST":
            return
        if pinned is not None:
            self.start, self.not_before = "AT_TIMESTAMP", pinned
            return
        if not await self.env.checkpoints.write_fields(shard, {start_field(shard): repr(time.time() - LATEST_MARGIN_S)}):
            raise LeaseLost(shard)

    async def _iterator(self) -> str:
        after = str(self.last_read) if self.last_read is not None else None
        timestamp = self.not_before if self.not_before is not None else self.env.mapping.starting_position_timestamp
        return await self.source.iterator(self.shard.shard_id, after, self.start, timestamp)

    async def _read(self) -> None:
        stopping = self.env.stopping
        iterator: str | None = None
        records_at = time.monotonic()
        try:
            while not stopping.is_set():
                room = self.max_buffer - len(self.progress)
                if room < self.min_read or self.buffered_bytes >= self.max_bytes:
                    self.space.clear()
                    await wait_either(self.space, stopping, 1.0)
                    continue
                try:
                    iterator = iterator or await self._iterator()
                    limit = max(1, min(MAX_GETRECORDS, room))
                    result = await self.source.read(self.shard.shard_id, iterator, limit)
                except Exception as exc:
                    if not self.source.is_expired_iterator(exc):
                        log.warning("shard %s: read failed: %s", self.shard.shard_id, exc)
                        await wait_either(asyncio.Event(), stopping, self.source.poll_slow_s * 4)
                    iterator = None
                    continue
                iterator = result.next_iterator
                self.behind_ms = result.behind_ms
                self._accept(result.records)
                await self.commit()
                if iterator is None or (not result.records and await self._closed_and_read()):
                    self.ended = True
                    return
                if result.records:
                    records_at = time.monotonic()
                else:
                    quiet = time.monotonic() - records_at
                    await wait_either(asyncio.Event(), stopping, idle_poll_s(quiet, self.source.poll_fast_s, self.source.poll_slow_s))
        finally:
            self.reading = False
            for lane in self.lanes:
                lane.wake.set()

    async def _closed_and_read(self) -> bool:
        """Whether a closed shard is read to its end when the source never returns a null
        iterator (moto); the end is looked up again since moto moves it."""
        if self.shard.ending is None:
            return False
        for info in await self.source.shards():
            if info.shard_id == self.shard.shard_id:
                self.shard = info
        return self.shard.ending is not None and (self.last_read or 0) >= self.shard.ending

    def _accept(self, records: list[StreamRecord]) -> None:
        everything = self.filters.matches_all  # no FilterCriteria: skip building filter views
        lanes = len(self.lanes)
        for record in records:
            self.progress.add(record.seq, record.sequence)
            self.last_read = record.seq
            lane = self.lanes[lane_for(record.key, lanes)]
            if (self.not_before is not None and record.arrival < self.not_before) or lane.folded(record):
                self.progress.done([record.seq])  # before our LATEST start, or already in a window state
            elif everything or self.filters.matches(self.source.filter_view(record.event)):
                self.buffered_bytes += record.size
                lane.push(record)
            else:
                self.progress.done([record.seq])

    async def done(self, records: Sequence[StreamRecord]) -> None:
        self.progress.done(r.seq for r in records)
        self.buffered_bytes -= sum(r.size for r in records)
        await self.commit()
        self.space.set()

    async def commit(self) -> None:
        """Write the checkpoint if it moved, with every changed window state, in one step."""
        self.progress.advance()
        shard = self.shard.shard_id
        async with self.lock:
            value = self.progress.checkpoint
            fields: dict[str, str] = {}
            if value is not None and value != self.written:
                fields[shard] = value
            for lane in self.lanes:
                if lane.dirty:
                    fields[window_field(shard, lane.index)] = lane.win.dumps()
                    lane.dirty = False
            if not fields:
                return
            if not await self.env.checkpoints.write_fields(shard, fields, self.env.drain_into):
                raise LeaseLost(shard)
            if shard in fields:
                self.written = value
